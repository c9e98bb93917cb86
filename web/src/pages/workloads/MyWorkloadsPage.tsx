import { Anchor, Button, Group, Text } from '@mantine/core';
import { IconRefresh, IconRocket } from '@tabler/icons-react';
import { Link } from 'react-router-dom';
import { useMe } from '../../api/queries/session';
import { useWorkloads } from '../../api/queries/workloads';
import type { Workload } from '../../api/types';
import { PageHeader } from '../../components/PageHeader';
import { QueryError } from '../../components/QueryError';
import { StatusBadge } from '../../components/StatusBadge';
import { VirtualTable, type Column } from '../../components/VirtualTable';
import { age } from '../../components/format';

function Ports({ workload }: { workload: Workload }) {
  if (workload.ports.length === 0) return <Text span size="sm">—</Text>;
  return (
    <Group gap={6}>
      {workload.ports.map((port) => {
        const text = port.host_port ? `${port.container_port}→${port.host_port}` : `${port.container_port}`;
        return port.url ? (
          <Anchor key={port.container_port} href={port.url} target="_blank" rel="noreferrer" size="sm">
            {text}
          </Anchor>
        ) : (
          <Text key={port.container_port} span size="sm">
            {text}
          </Text>
        );
      })}
    </Group>
  );
}

export const workloadColumns: Column<Workload>[] = [
  {
    key: 'name',
    header: 'Name',
    cell: (w) => (
      <Anchor component={Link} to={`/workloads/${w.id}`} size="sm" style={{ whiteSpace: 'nowrap' }}>
        {w.name}
      </Anchor>
    ),
  },
  { key: 'status', header: 'Status', cell: (w) => <StatusBadge status={w.status} />, width: 120 },
  { key: 'reason', header: 'Reason', cell: (w) => w.reason ?? '—' },
  { key: 'server', header: 'Server', cell: (w) => w.server_name ?? '—' },
  {
    key: 'gpus',
    header: 'GPUs',
    cell: (w) => (w.gpu_indices.length ? w.gpu_indices.join(', ') : w.gpu ? `${w.gpu} (not placed)` : '—'),
  },
  { key: 'ports', header: 'Ports', cell: (w) => <Ports workload={w} /> },
  { key: 'age', header: 'Age', cell: (w) => <time dateTime={w.created_at}>{age(w.created_at)}</time>, width: 90 },
];

export function MyWorkloadsPage() {
  const me = useMe();
  const workloads = useWorkloads({ owner_id: me.data?.id, limit: 1000 }, { enabled: !!me.data });

  return (
    <>
      <PageHeader
        title="My workloads"
        actions={
          <Group gap="sm">
            <Button
              variant="default"
              leftSection={<IconRefresh size={16} />}
              onClick={() => workloads.refetch()}
              loading={workloads.isFetching}
            >
              Refresh
            </Button>
            <Button component={Link} to="/launch" leftSection={<IconRocket size={16} />}>
              Launch
            </Button>
          </Group>
        }
      />
      <QueryError error={workloads.error} title="Could not load your workloads" />
      {workloads.data && (
        <Text size="sm" c="dimmed" mb="xs" data-testid="workload-count">
          {workloads.data.count} workload{workloads.data.count === 1 ? '' : 's'}
          {workloads.data.count > workloads.data.data.length &&
            ` (the newest ${workloads.data.data.length} shown)`}
        </Text>
      )}
      <VirtualTable
        label="My workloads"
        testId="workloads-table"
        rows={workloads.data?.data ?? []}
        columns={workloadColumns}
        rowKey={(w) => w.id}
        empty={workloads.isPending ? 'Loading…' : 'No workloads yet: launch one.'}
      />
    </>
  );
}
