/** The lines of a pull, build or push as they arrive, and how it ended. */
import { Alert, Badge, Code, Group, ScrollArea, Stack } from '@mantine/core';
import { useEffect, useRef } from 'react';
import type { ImageOperationState } from '../../api/queries/images';
import { QueryError } from '../../components/QueryError';
import { READABLE_ALERT } from '../../components/a11y';

export function ProgressLog({ title, state }: { title: string; state: ImageOperationState }) {
  const viewport = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = viewport.current;
    if (element) element.scrollTop = element.scrollHeight;
  }, [state.lines]);

  const outcome = state.running ? 'running' : state.succeeded === true ? 'done' : state.succeeded === false ? 'failed' : null;
  if (!outcome && !state.error && state.lines.length === 0) return null;
  const last = state.lines[state.lines.length - 1];
  return (
    <Stack gap="xs" data-testid="image-progress" data-outcome={outcome ?? 'refused'}>
      <Group gap="xs" role="status">
        {outcome && (
          <Badge variant="dot" color={outcome === 'done' ? 'green' : outcome === 'failed' ? 'red' : 'blue'}>
            {title}: {outcome}
          </Badge>
        )}
      </Group>
      <QueryError error={state.error} title={`${title}: refused`} />
      {outcome === 'failed' && last && (
        <Alert color="red" title={`${title} failed`} styles={READABLE_ALERT}>
          {last.text}
        </Alert>
      )}
      {state.lines.length > 0 && (
        <ScrollArea
          h={260}
          viewportRef={viewport}
          viewportProps={{ tabIndex: 0, 'aria-label': `${title} output`, role: 'region' } as Record<string, unknown>}
        >
          <Code block style={{ whiteSpace: 'pre-wrap' }} data-testid="image-progress-lines">
            {state.lines.map((line) => line.text).join('\n')}
          </Code>
        </ScrollArea>
      )}
    </Stack>
  );
}
