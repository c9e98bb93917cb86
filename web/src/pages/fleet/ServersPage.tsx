import { Anchor, Button, Group, Select, Text, TextInput } from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { IconPlus } from '@tabler/icons-react';
import { useMemo, useState } from 'react';
import { Link } from 'react-router-dom';
import { useClusters, useServers } from '../../api/queries/fleet';
import type { Server, ServerStatus } from '../../api/types';
import { PageHeader } from '../../components/PageHeader';
import { QueryError } from '../../components/QueryError';
import { StatusBadge } from '../../components/StatusBadge';
import { UsageBar } from '../../components/UsageBar';
import { VirtualTable, type Column } from '../../components/VirtualTable';
import { age } from '../../components/format';
import { RegisterServerModal } from './RegisterServerModal';

function gpuSummary(server: Server): string {
  if (server.gpus.length === 0) return '—';
  const counts = new Map<string, number>();
  for (const gpu of server.gpus) counts.set(gpu.model, (counts.get(gpu.model) ?? 0) + 1);
  return [...counts].map(([model, count]) => `${count}× ${model}`).join(', ');
}

/** Mean utilisation of the GPUs that report one (simulated and agent servers do). */
function gpuUtilisation(server: Server): string {
  const known = server.gpus.map((gpu) => gpu.utilization).filter((u): u is number => u !== null);
  if (known.length === 0) return '—';
  return `${Math.round(known.reduce((sum, u) => sum + u, 0) / known.length)}%`;
}

export function ServersPage() {
  const clusters = useClusters();
  const [clusterId, setClusterId] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [search, setSearch] = useState('');
  const [debouncedSearch] = useDebouncedValue(search, 150);
  const [registering, setRegistering] = useState(false);
  const servers = useServers({ cluster_id: clusterId, status: status as ServerStatus | null });

  const clusterNames = useMemo(
    () => new Map((clusters.data?.data ?? []).map((c) => [c.id, c.name])),
    [clusters.data],
  );
  const rows = useMemo(() => {
    const needle = debouncedSearch.trim().toLowerCase();
    const all = servers.data?.data ?? [];
    return needle ? all.filter((s) => s.name.toLowerCase().includes(needle)) : all;
  }, [servers.data, debouncedSearch]);

  const columns: Column<Server>[] = useMemo(
    () => [
      {
        key: 'name',
        header: 'Name',
        cell: (s) => (
          <Anchor component={Link} to={`/servers/${s.id}`}>
            {s.name}
          </Anchor>
        ),
      },
      { key: 'cluster', header: 'Cluster', cell: (s) => clusterNames.get(s.cluster_id) ?? '—' },
      { key: 'status', header: 'Status', cell: (s) => <StatusBadge status={s.status} />, width: 120 },
      {
        key: 'cpu',
        header: 'CPU',
        cell: (s) => <UsageBar compact label={`${s.name} CPU`} used={s.allocated.cpu} total={s.capacity.cpu} unit="cores" />,
        width: 140,
      },
      {
        key: 'ram',
        header: 'RAM',
        cell: (s) => <UsageBar compact label={`${s.name} RAM`} used={s.allocated.ram_gb} total={s.capacity.ram_gb} unit="GB" />,
        width: 140,
      },
      {
        key: 'gpu',
        header: 'GPU',
        cell: (s) => <UsageBar compact label={`${s.name} GPU`} used={s.allocated.gpu} total={s.capacity.gpu} unit="devices" />,
        width: 140,
      },
      { key: 'gpus', header: 'GPUs', cell: gpuSummary },
      { key: 'util', header: 'GPU util', cell: gpuUtilisation, width: 90 },
      {
        key: 'seen',
        header: 'Last seen',
        cell: (s) => (s.last_seen_at ? <time dateTime={s.last_seen_at}>{age(s.last_seen_at)} ago</time> : '—'),
        width: 110,
      },
    ],
    [clusterNames],
  );

  return (
    <>
      <PageHeader
        title="Servers"
        actions={
          <Button leftSection={<IconPlus size={16} />} onClick={() => setRegistering(true)}>
            Register server
          </Button>
        }
      />
      <Group mb="sm" align="end">
        <TextInput label="Search by name" value={search} onChange={(e) => setSearch(e.currentTarget.value)} />
        <Select
          label="Cluster"
          clearable
          placeholder="All clusters"
          data={(clusters.data?.data ?? []).map((c) => ({ value: c.id, label: c.name }))}
          value={clusterId}
          onChange={setClusterId}
        />
        <Select
          label="Status"
          clearable
          placeholder="Any status"
          data={['online', 'offline', 'draining', 'maintenance']}
          value={status}
          onChange={setStatus}
        />
        <Anchor component={Link} to="/clusters" size="sm" mb={8}>
          Manage clusters
        </Anchor>
      </Group>
      <QueryError error={servers.error} title="Could not load the servers" />
      {servers.data && (
        <Text size="sm" c="dimmed" mb="xs" aria-live="polite" data-testid="servers-count">
          {rows.length} of {servers.data.count} server{servers.data.count === 1 ? '' : 's'}
          {servers.isFetching ? ' (updating…)' : ''}
        </Text>
      )}
      <VirtualTable
        label="Servers"
        testId="servers-table"
        rows={rows}
        columns={columns}
        rowKey={(s) => s.id}
        empty={servers.isPending ? 'Loading…' : 'No servers.'}
        height="calc(100vh - 260px)"
      />
      <RegisterServerModal opened={registering} onClose={() => setRegistering(false)} />
    </>
  );
}
