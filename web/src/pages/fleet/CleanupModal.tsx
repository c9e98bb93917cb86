/** The cleanup dialog of a server: a dry run first (what would go, its sizes and the total),
 * then, once confirmed, the real run and what became of each item. */
import { Alert, Badge, Button, Group, Modal, NumberInput, Stack, Table, Text } from '@mantine/core';
import { useEffect, useState } from 'react';
import { useServerCleanup } from '../../api/queries/fleet';
import type { CleanupItem, Server, ServerCleanup } from '../../api/types';
import { QueryError } from '../../components/QueryError';
import { MODAL_CLOSE, READABLE_ALERT } from '../../components/a11y';

/** Each outcome's dot (beside text in the text colour: AA contrast whatever the colour). */
const OUTCOME_COLOR: Record<CleanupItem['outcome'], string> = {
  planned: 'blue',
  removed: 'green',
  failed: 'red',
  skipped: 'gray',
};

/** Bytes in the largest binary unit that keeps the number at or above 1 (as the CLI). */
export function formatBytes(size: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function Items({ report }: { report: ServerCleanup }) {
  if (report.items.length === 0) {
    return <Text size="sm">{report.note ?? 'Nothing to clean up.'}</Text>;
  }
  return (
    <Table withTableBorder data-testid="cleanup-items">
      <Table.Thead>
        <Table.Tr>
          <Table.Th scope="col">Kind</Table.Th>
          <Table.Th scope="col">Name</Table.Th>
          <Table.Th scope="col">Size</Table.Th>
          <Table.Th scope="col">Outcome</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {report.items.map((item) => (
          <Table.Tr key={`${item.kind}-${item.id}`}>
            <Table.Td>{item.kind}</Table.Td>
            <Table.Td style={{ wordBreak: 'break-all' }}>{item.name}</Table.Td>
            <Table.Td>{formatBytes(item.size_bytes)}</Table.Td>
            <Table.Td>
              <Badge variant="dot" color={OUTCOME_COLOR[item.outcome]}>
                {item.outcome}
              </Badge>
              {item.error && (
                <Text size="xs" mt={2}>
                  {item.error}
                </Text>
              )}
            </Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

export function CleanupModal({ server, opened, onClose }: { server: Server; opened: boolean; onClose: () => void }) {
  const plan = useServerCleanup();
  const run = useServerCleanup();
  const { mutate: listPlan, reset: resetPlan } = plan;
  const { reset: resetRun } = run;
  // Empty: the server's retention setting.
  const [retention, setRetention] = useState<number | string>('');
  const retentionHours = typeof retention === 'number' ? retention : null;

  // Every opening starts with a fresh dry run: what is there now.
  useEffect(() => {
    if (!opened) return;
    resetRun();
    listPlan({ id: server.id, dryRun: true });
  }, [opened, server.id, listPlan, resetRun]);

  const listAgain = () => {
    resetRun();
    listPlan({ id: server.id, dryRun: true, retentionHours });
  };

  const close = () => {
    resetPlan();
    resetRun();
    onClose();
  };

  const planned = plan.data;
  const done = run.data;
  return (
    <Modal opened={opened} onClose={close} title={`Clean up ${server.name}`} size="xl" closeButtonProps={MODAL_CLOSE}>
      <Stack>
        <Text size="sm">
          Stopped gpuyard containers past the retention, dangling images and orphaned volumes gpuyard made, and files
          directories of workloads that are gone. Nothing gpuyard did not create is touched.
        </Text>
        <Group align="end">
          <NumberInput
            label="Retention (hours)"
            description="Stopped containers and files unused for less than this stay; empty: the server's setting."
            min={0}
            max={87600}
            value={retention}
            onChange={setRetention}
            style={{ flex: 1 }}
          />
          <Button variant="default" onClick={listAgain} loading={plan.isPending}>
            List again
          </Button>
        </Group>
        <QueryError error={plan.error} title="Could not list what to clean up" />
        <QueryError error={run.error} title="Could not clean up" />
        {plan.isPending && <Text size="sm">Looking…</Text>}
        {done ? (
          <>
            <Alert
              color={done.failed > 0 ? 'orange' : 'green'}
              title="Cleanup done"
              styles={READABLE_ALERT}
              data-testid="cleanup-result"
            >
              Removed {done.removed} item(s) and freed {formatBytes(done.total_bytes)}
              {done.failed > 0 ? `; ${done.failed} could not be removed` : ''}
              {done.skipped > 0 ? `; ${done.skipped} changed meanwhile and stayed` : ''}.
            </Alert>
            <Items report={done} />
          </>
        ) : (
          planned && (
            <>
              <Text size="sm" fw={500} data-testid="cleanup-plan-total">
                Dry run: {planned.items.length} item(s), {formatBytes(planned.total_bytes)} would be freed.
              </Text>
              <Items report={planned} />
            </>
          )
        )}
        <Group justify="flex-end">
          <Button variant="default" onClick={close}>
            {done ? 'Close' : 'Cancel'}
          </Button>
          {!done && (
            <Button
              color="red"
              loading={run.isPending}
              disabled={!planned || planned.items.length === 0}
              // The retention the listed plan was made with, whatever the field says now.
              onClick={() => run.mutate({ id: server.id, dryRun: false, retentionHours: plan.variables?.retentionHours })}
            >
              Remove {planned ? planned.items.length : ''} item(s)
            </Button>
          )}
        </Group>
      </Stack>
    </Modal>
  );
}
