/** A team's idle culling policy: what applies to its workloads, and the form its team
 * admins (and admins) set it with. Only admins set or lift "never": the API answers 403. */
import { Button, Group, NumberInput, Select, Stack, Text, Title } from '@mantine/core';
import { useEffect, useState } from 'react';
import { useSetTeamCulling, useTeamCulling } from '../../api/queries/culling';
import { QueryError } from '../../components/QueryError';

const MODES = [
  { value: '', label: 'as the default' },
  { value: 'on', label: 'on' },
  { value: 'off', label: 'off (the team opts out)' },
  { value: 'never', label: 'never (admins only)' },
];

type Mode = 'on' | 'off' | 'never';

function orNull(value: string | number): number | null {
  return typeof value === 'number' ? value : null;
}

export function TeamCullingSection({ teamId }: { teamId: string }) {
  const culling = useTeamCulling(teamId);
  const save = useSetTeamCulling();
  const [mode, setMode] = useState('');
  const [threshold, setThreshold] = useState<string | number>('');
  const [windowMin, setWindowMin] = useState<string | number>('');
  const [lifetimeH, setLifetimeH] = useState<string | number>('');
  const policy = culling.data?.policy;
  useEffect(() => {
    setMode(policy?.mode ?? '');
    setThreshold(policy?.threshold_pct ?? '');
    setWindowMin(policy?.window_s != null ? policy.window_s / 60 : '');
    setLifetimeH(policy?.max_lifetime_s != null ? policy.max_lifetime_s / 3600 : '');
  }, [policy]);
  const effective = culling.data?.effective;

  const submit = (event: React.FormEvent) => {
    event.preventDefault();
    const windowMinutes = orNull(windowMin);
    const lifetimeHours = orNull(lifetimeH);
    save.mutate({
      teamId,
      body: {
        mode: mode ? (mode as Mode) : null,
        threshold_pct: orNull(threshold),
        window_s: windowMinutes != null ? Math.round(windowMinutes * 60) : null,
        max_lifetime_s: lifetimeHours != null ? Math.round(lifetimeHours * 3600) : null,
      },
    });
  };

  return (
    <Stack gap="xs" data-testid="team-culling">
      <Title order={3} size="h5">
        Idle culling
      </Title>
      <QueryError error={culling.error} title="Could not load the culling policy" />
      {effective && (
        <Text size="sm">
          {effective.idle_culling
            ? `Idle workloads are stopped after ${effective.window_s / 60} min below ${effective.threshold_pct} % (warned first).`
            : `Idle workloads are not stopped${effective.off_by ? ` (${effective.off_by})` : ''}.`}{' '}
          An image type's policy may refine this.
        </Text>
      )}
      <form onSubmit={submit} aria-label="Idle culling policy">
        <Stack gap="xs">
          <Group grow align="flex-end">
            <Select label="Idle culling" data={MODES} value={mode} onChange={(v) => setMode(v ?? '')} allowDeselect={false} />
            <NumberInput label="Threshold (%)" min={0} max={100} value={threshold} onChange={setThreshold} placeholder="default" />
          </Group>
          <Group grow align="flex-end">
            <NumberInput label="Window (minutes)" min={1} max={43200} value={windowMin} onChange={setWindowMin} placeholder="default" />
            <NumberInput
              label="Default maximum lifetime (hours)"
              min={1}
              max={2160}
              value={lifetimeH}
              onChange={setLifetimeH}
              placeholder="none"
            />
          </Group>
          <QueryError error={save.error} title="Could not save the culling policy" />
          <Group>
            <Button type="submit" loading={save.isPending}>
              Save culling policy
            </Button>
            {save.isSuccess && <Text size="sm">Saved.</Text>}
          </Group>
        </Stack>
      </form>
    </Stack>
  );
}
