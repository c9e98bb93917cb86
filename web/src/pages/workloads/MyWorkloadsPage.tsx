import { ActionIcon, Anchor, Button, Group, Menu, Text } from '@mantine/core';
import { IconDots, IconPlayerStop, IconRefresh, IconRocket, IconTrash } from '@tabler/icons-react';
import { Link, useNavigate } from 'react-router-dom';
import { useMe } from '../../api/queries/session';
import { useWorkloads } from '../../api/queries/workloads';
import type { Workload } from '../../api/types';
import { PageHeader } from '../../components/PageHeader';
import { QueryError } from '../../components/QueryError';
import { StatusBadge } from '../../components/StatusBadge';
import { VirtualTable, type Column } from '../../components/VirtualTable';
import { age } from '../../components/format';
import { WorkloadPorts } from './WorkloadPorts';
import { isFinished, useWorkloadActions } from './actions';

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
  { key: 'ports', header: 'Ports', cell: (w) => <WorkloadPorts workload={w} /> },
  { key: 'age', header: 'Age', cell: (w) => <time dateTime={w.created_at}>{age(w.created_at)}</time>, width: 90 },
];

/** A row's menu: stop and delete, each confirmed first. */
function RowActions({ workload }: { workload: Workload }) {
  const { confirmStop, confirmDelete } = useWorkloadActions();
  return (
    <Menu position="bottom-end" withinPortal withInitialFocusPlaceholder={false}>
      <Menu.Target>
        <ActionIcon variant="subtle" aria-label={`Actions for ${workload.name}`}>
          <IconDots size={16} />
        </ActionIcon>
      </Menu.Target>
      <Menu.Dropdown>
        <Menu.Item
          leftSection={<IconPlayerStop size={14} />}
          disabled={isFinished(workload)}
          onClick={() => confirmStop(workload)}
        >
          Stop
        </Menu.Item>
        <Menu.Item color="red.9" leftSection={<IconTrash size={14} />} onClick={() => confirmDelete(workload)}>
          Delete
        </Menu.Item>
      </Menu.Dropdown>
    </Menu>
  );
}

const myColumns: Column<Workload>[] = [
  ...workloadColumns,
  { key: 'actions', header: 'Actions', cell: (w) => <RowActions workload={w} />, width: 80 },
];

export function MyWorkloadsPage() {
  const me = useMe();
  const navigate = useNavigate();
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
        columns={myColumns}
        rowKey={(w) => w.id}
        onRowClick={(w) => navigate(`/workloads/${w.id}`)}
        empty={workloads.isPending ? 'Loading…' : 'No workloads yet: launch one.'}
      />
    </>
  );
}
