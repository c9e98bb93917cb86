import { Anchor, Group, MultiSelect, Select, Text, TextInput } from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { useMemo, useState } from 'react';
import { Link } from 'react-router-dom';
import { useTeams, useUsers } from '../../api/queries/admin';
import { useAllWorkloads } from '../../api/queries/allWorkloads';
import { useClusters, useServers } from '../../api/queries/fleet';
import { useMe } from '../../api/queries/session';
import type { Workload, WorkloadSort, WorkloadStatus } from '../../api/types';
import { PageHeader } from '../../components/PageHeader';
import { QueryError } from '../../components/QueryError';
import { StatusBadge } from '../../components/StatusBadge';
import { VirtualTable, type Column } from '../../components/VirtualTable';
import { age } from '../../components/format';

const STATUSES: WorkloadStatus[] = [
  'pending',
  'scheduled',
  'starting',
  'running',
  'succeeded',
  'failed',
  'stopped',
  'preempted',
  'lost',
];

const columns: Column<Workload>[] = [
  {
    key: 'name',
    header: 'Name',
    cell: (w) => (
      <Anchor component={Link} to={`/workloads/${w.id}`}>
        {w.name}
      </Anchor>
    ),
  },
  { key: 'owner', header: 'Owner', cell: (w) => w.owner },
  { key: 'status', header: 'Status', cell: (w) => <StatusBadge status={w.status} />, width: 120 },
  { key: 'reason', header: 'Reason', cell: (w) => w.reason ?? '—' },
  { key: 'server', header: 'Server', cell: (w) => w.server_name ?? '—' },
  {
    key: 'resources',
    header: 'CPU / RAM / GPU',
    cell: (w) => `${w.cpu} / ${w.ram_gb} GB / ${w.gpu}${w.gpu_indices.length ? ` [${w.gpu_indices.join(',')}]` : ''}`,
  },
  { key: 'priority', header: 'Priority', cell: (w) => w.priority, width: 80 },
  { key: 'age', header: 'Age', cell: (w) => <time dateTime={w.created_at}>{age(w.created_at)}</time>, width: 80 },
];

export function AllWorkloadsPage() {
  const me = useMe();
  const isAdmin = me.data?.role === 'admin';
  const users = useUsers({ enabled: isAdmin });
  const teams = useTeams();
  // 1,000 servers are a large answer: asked for when the server picker first opens.
  const [serverPickerUsed, setServerPickerUsed] = useState(false);
  const servers = useServers({}, { enabled: serverPickerUsed });
  const clusters = useClusters();

  const [status, setStatus] = useState<string[]>([]);
  const [owner, setOwner] = useState<string | null>(null);
  const [ownerText, setOwnerText] = useState('');
  const [team, setTeam] = useState<string | null>(null);
  const [server, setServer] = useState<string | null>(null);
  const [cluster, setCluster] = useState<string | null>(null);
  const [prefix, setPrefix] = useState('');
  const [sort, setSort] = useState<string | null>('newest');
  const [debouncedPrefix] = useDebouncedValue(prefix, 250);
  const [debouncedOwnerText] = useDebouncedValue(ownerText, 250);

  const workloads = useAllWorkloads({
    status: status as WorkloadStatus[],
    owner_id: (isAdmin ? owner : debouncedOwnerText.trim()) ?? undefined,
    team_id: team ?? undefined,
    server_id: server ?? undefined,
    cluster_id: cluster ?? undefined,
    name_prefix: debouncedPrefix.trim(),
    sort: (sort ?? 'newest') as WorkloadSort,
  });

  const serverOptions = useMemo(
    () => (servers.data?.data ?? []).map((s) => ({ value: s.id, label: s.name })),
    [servers.data],
  );

  return (
    <>
      <PageHeader title="All workloads" />
      <Group mb="sm" align="end" gap="sm">
        <TextInput label="Name starts with" value={prefix} onChange={(e) => setPrefix(e.currentTarget.value)} maxLength={64} />
        <MultiSelect label="Status" placeholder="Any" data={STATUSES} value={status} onChange={setStatus} clearable w={220} />
        {isAdmin ? (
          <Select
            label="Owner"
            placeholder="Anyone"
            searchable
            clearable
            data={(users.data?.data ?? []).map((u) => ({ value: u.id, label: u.username ? `${u.username} (${u.email})` : u.email }))}
            value={owner}
            onChange={setOwner}
          />
        ) : (
          <TextInput label="Owner id" value={ownerText} onChange={(e) => setOwnerText(e.currentTarget.value)} maxLength={64} />
        )}
        <Select
          label="Team"
          placeholder="Any"
          clearable
          data={(teams.data?.data ?? []).map((t) => ({ value: t.id, label: t.name }))}
          value={team}
          onChange={setTeam}
        />
        <Select
          label="Server"
          placeholder="Any"
          searchable
          clearable
          limit={50}
          data={serverOptions}
          value={server}
          onChange={setServer}
          onDropdownOpen={() => setServerPickerUsed(true)}
          onFocus={() => setServerPickerUsed(true)}
          nothingFoundMessage={servers.isFetching ? 'Loading the servers' : 'No server'}
        />
        <Select
          label="Cluster"
          placeholder="Any"
          clearable
          data={(clusters.data?.data ?? []).map((c) => ({ value: c.id, label: c.name }))}
          value={cluster}
          onChange={setCluster}
        />
        <Select
          label="Sort"
          allowDeselect={false}
          data={[
            { value: 'newest', label: 'Newest' },
            { value: 'oldest', label: 'Oldest' },
            { value: 'name', label: 'Name' },
            { value: 'priority', label: 'Priority' },
            { value: 'status', label: 'Status' },
          ]}
          value={sort}
          onChange={setSort}
          w={120}
        />
      </Group>
      <QueryError error={workloads.error} title="Could not load the workloads" />
      {workloads.data && (
        <Text size="sm" c="dimmed" mb="xs" aria-live="polite" data-testid="all-workloads-count">
          {workloads.data.count} workload{workloads.data.count === 1 ? '' : 's'}
          {workloads.isFetching ? ' (updating…)' : ''}
        </Text>
      )}
      <VirtualTable
        label="All workloads"
        testId="all-workloads-table"
        rows={workloads.data?.data ?? []}
        columns={columns}
        rowKey={(w) => w.id}
        empty={workloads.isPending ? 'Loading…' : 'No workload matches.'}
        height="calc(100vh - 280px)"
      />
    </>
  );
}
