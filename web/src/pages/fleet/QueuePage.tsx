import { Anchor, Badge, Group, Text, Title } from '@mantine/core';
import { Link } from 'react-router-dom';
import { useQueue } from '../../api/queries/fleet';
import type { FairShareTeam, QueueEntry, QueueJob } from '../../api/types';
import { PageHeader } from '../../components/PageHeader';
import { QueryError } from '../../components/QueryError';
import { VirtualTable, type Column } from '../../components/VirtualTable';
import { age, until } from '../../components/format';
import { formatAmount } from '../../components/UsageBar';

function resources(entry: QueueEntry): string {
  const w = entry.workload;
  const parts = [`${w.cpu} CPU`, `${w.ram_gb} GB RAM`];
  if (w.gpu) parts.push(`${w.gpu} GPU${w.gpu_model ? ` (${w.gpu_model})` : ''}`);
  if (w.replicas > 1) parts.push(`× ${w.replicas}${w.gang ? ' gang' : ''}`);
  return parts.join(', ');
}

/** The workload's team with where it stands in the quota tree: the GPUs it holds against
 * its fair share (what it would hold if the fleet were divided now), and whether it is
 * under its guarantee (such work goes first among equal priorities). */
function TeamCell({ team }: { team: FairShareTeam | undefined }) {
  if (!team) return <Text size="sm">—</Text>;
  return (
    <div data-team-share={team.name}>
      <Text size="sm">{team.name}</Text>
      <Text size="xs" c="dimmed" style={{ whiteSpace: 'nowrap' }}>
        GPU {formatAmount(team.used.gpu)} of {formatAmount(team.fair_share.gpu)} fair
      </Text>
      {team.under_guarantee && (
        <Badge size="xs" variant="dot" color="teal">
          under guarantee
        </Badge>
      )}
    </div>
  );
}

const columns = (teams: Map<string, FairShareTeam>): Column<QueueEntry>[] => [
  { key: 'position', header: '#', cell: (e) => e.position, width: 60 },
  {
    key: 'name',
    header: 'Workload',
    cell: (e) => (
      <Anchor component={Link} to={`/workloads/${e.workload.id}`}>
        {e.workload.name}
      </Anchor>
    ),
  },
  { key: 'owner', header: 'Owner', cell: (e) => e.workload.owner },
  {
    key: 'team',
    header: 'Team',
    cell: (e) => <TeamCell team={e.workload.team_id ? teams.get(e.workload.team_id) : undefined} />,
    width: 170,
  },
  { key: 'priority', header: 'Priority', cell: (e) => e.workload.priority, width: 90 },
  { key: 'resources', header: 'Asks for', cell: resources },
  {
    key: 'reason',
    header: 'Why it waits',
    cell: (e) => (
      <span data-code={e.code}>
        {e.reason}
        {e.reserved_server_id ? ' (a server is reserved for it)' : ''}
      </span>
    ),
  },
  { key: 'retries', header: 'Retries', cell: (e) => e.retries, width: 80 },
  {
    key: 'start',
    header: 'Expected start',
    cell: (e) =>
      e.estimated_start ? (
        <time dateTime={e.estimated_start} title={new Date(e.estimated_start).toLocaleString()}>
          {until(e.estimated_start)}
        </time>
      ) : (
        <span title="Work in its way declared no end">unknown</span>
      ),
    width: 120,
  },
  {
    key: 'age',
    header: 'Waiting',
    cell: (e) => <time dateTime={e.workload.created_at}>{age(e.workload.created_at)}</time>,
    width: 90,
  },
];

/** The job view's registries, in the order work moves through them. */
const REGISTRIES = ['queued', 'started', 'finished', 'failed', 'deferred'] as const;

const deferredColumns: Column<QueueJob>[] = [
  {
    key: 'name',
    header: 'Workload',
    cell: (j) => (
      <Anchor component={Link} to={`/workloads/${j.workload_id}`}>
        {j.name}
      </Anchor>
    ),
  },
  { key: 'status', header: 'Status', cell: (j) => j.status, width: 110 },
  { key: 'retries', header: 'Retries', cell: (j) => j.retries, width: 80 },
  {
    key: 'back',
    header: 'Back in the queue at',
    cell: (j) =>
      j.deferred_until ? (
        <time dateTime={j.deferred_until}>{new Date(j.deferred_until).toLocaleString()}</time>
      ) : (
        'when its server returns'
      ),
  },
];

export function QueuePage() {
  const queue = useQueue();
  const teams = new Map((queue.data?.teams ?? []).map((team) => [team.team_id, team]));
  return (
    <>
      <PageHeader title="Queue" />
      <QueryError error={queue.error} title="Could not load the queue" />
      {queue.data && (
        <Group gap="xs" mb="xs" data-testid="queue-registries" aria-label="Registries">
          {REGISTRIES.map((registry) => (
            <Badge key={registry} variant="light" data-registry={registry}>
              {registry} {queue.data.registries[registry]}
            </Badge>
          ))}
        </Group>
      )}
      {queue.data && (
        <Text size="sm" c="dimmed" mb="xs">
          {queue.data.count} pending, in scheduling order
        </Text>
      )}
      <VirtualTable
        label="Queue"
        testId="queue-table"
        rows={queue.data?.data ?? []}
        columns={columns(teams)}
        rowKey={(e) => e.workload.id}
        empty={queue.isPending ? 'Loading…' : 'Nothing is waiting.'}
      />
      <Title order={3} size="h4" mt="lg" mb="xs">
        Deferred
      </Title>
      <VirtualTable
        label="Deferred"
        testId="deferred-table"
        rows={queue.data?.deferred ?? []}
        columns={deferredColumns}
        rowKey={(j) => j.workload_id}
        empty={queue.isPending ? 'Loading…' : 'Nothing is deferred.'}
      />
    </>
  );
}
