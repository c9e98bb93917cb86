import { Anchor, Badge, Card, Group, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import { useEffect, useRef, useState } from 'react';
import { Link, useParams } from 'react-router-dom';
import { useClusters, useServer, useServerEvents, useServerHistory } from '../../api/queries/fleet';
import type { Gpu, HistoryWindow, Server } from '../../api/types';
import { PageHeader } from '../../components/PageHeader';
import { QueryError } from '../../components/QueryError';
import { StatusBadge } from '../../components/StatusBadge';
import { UsageBar, formatAmount } from '../../components/UsageBar';
import { UsageChart } from '../../components/UsageChart';
import { gpuRows } from './history';
import { UsageHistorySection } from './UsageHistorySection';
import { ServerActions } from './serverActions';

function GpuCard({ gpu }: { gpu: Gpu }) {
  const share = gpu.allocated_milli / 1000;
  const holders = gpu.holders ?? [];
  return (
    <Card withBorder padding="sm" component="article" aria-labelledby={`gpu-${gpu.index}-title`} data-testid="gpu-card">
      <Group justify="space-between" mb={4}>
        <Title order={3} size="h5" id={`gpu-${gpu.index}-title`}>
          GPU {gpu.index}
        </Title>
        <Badge variant="dot" color={share > 0 ? 'orange' : 'green'}>
          {share > 0 ? (share >= 1 ? 'allocated' : 'shared') : 'free'}
        </Badge>
      </Group>
      <Text size="sm">{gpu.model}</Text>
      <Text size="xs" c="dimmed" style={{ wordBreak: 'break-all' }}>
        {gpu.uuid}
      </Text>
      <Text size="sm" mt={4}>
        VRAM {formatAmount(gpu.memory_gb)} GB
      </Text>
      <Stack gap={4} mt="xs">
        <UsageBar label="Allocated" used={share} total={1} unit="of the device" />
        {gpu.allocated_memory_gb > 0 && gpu.memory_gb > 0 ? (
          <UsageBar label="VRAM reserved" used={gpu.allocated_memory_gb} total={gpu.memory_gb} unit="GB" />
        ) : null}
        <Text size="sm">
          Utilisation: {gpu.utilization === null ? 'unknown' : `${Math.round(gpu.utilization)}%`}
        </Text>
      </Stack>
      <Text size="sm" fw={500} mt="xs">
        Held by
      </Text>
      {holders.length === 0 ? (
        <Text size="sm">nobody</Text>
      ) : (
        <ul style={{ margin: 0, paddingLeft: 18 }}>
          {holders.map((holder, i) => (
            <li key={`${holder.workload_id ?? 'hidden'}-${holder.replica ?? 0}-${i}`}>
              <Text size="sm" span>
                {holder.workload_id ? (
                  <Anchor component={Link} to={`/workloads/${holder.workload_id}`}>
                    {holder.workload_name ?? holder.workload_id}
                  </Anchor>
                ) : (
                  'in use (not visible to you)'
                )}
                {holder.owner ? ` · ${holder.owner}` : ''} · {formatAmount(holder.share)} of the device
              </Text>
            </li>
          ))}
        </ul>
      )}
    </Card>
  );
}

function Capacity({ server }: { server: Server }) {
  return (
    <SimpleGrid cols={{ base: 1, sm: 2, lg: 4 }}>
      <UsageBar label="CPU" used={server.allocated.cpu} total={server.capacity.cpu} unit="cores" />
      <UsageBar label="RAM" used={server.allocated.ram_gb} total={server.capacity.ram_gb} unit="GB" />
      <UsageBar label="Storage" used={server.allocated.storage_gb} total={server.capacity.storage_gb} unit="GB" />
      <UsageBar label="GPU" used={server.allocated.gpu} total={server.capacity.gpu} unit="devices" />
    </SimpleGrid>
  );
}

function Charts({ serverId, hasGpus }: { serverId: string; hasGpus: boolean }) {
  const [window, setWindow] = useState<HistoryWindow>('1h');
  const history = useServerHistory(serverId, window);
  const points = history.data?.points ?? [];
  const gpus = history.data?.gpus ?? [];
  const gpuUtilisation = gpuRows(gpus, 'utilization');
  const gpuAllocation = gpuRows(gpus, 'allocated');
  return (
    <UsageHistorySection
      headingId="charts-heading"
      window={window}
      onWindowChange={setWindow}
      points={points}
      error={history.error}
      errorTitle="Could not load the history"
    >
      {hasGpus && (
        <>
          <Card withBorder>
            <UsageChart title="GPU allocation (% of each device)" {...gpuAllocation} window={window} />
          </Card>
          <Card withBorder>
            <UsageChart title="GPU utilisation (%)" {...gpuUtilisation} window={window} />
          </Card>
        </>
      )}
    </UsageHistorySection>
  );
}

function Events({ serverId, status }: { serverId: string; status: string }) {
  const events = useServerEvents(serverId);
  const { refetch } = events;
  const shownStatus = useRef(status);
  // A status change (ours, or another operator's arriving live) adds an event.
  useEffect(() => {
    if (shownStatus.current === status) return;
    shownStatus.current = status;
    void refetch();
  }, [status, refetch]);
  return (
    <section aria-labelledby="events-heading">
      <Title order={2} size="h4" id="events-heading" mb="xs">
        Events
      </Title>
      <QueryError error={events.error} title="Could not load the events" />
      <Table withTableBorder data-testid="server-events">
        <Table.Thead>
          <Table.Tr>
            <Table.Th scope="col">When</Table.Th>
            <Table.Th scope="col">From</Table.Th>
            <Table.Th scope="col">To</Table.Th>
            <Table.Th scope="col">Reason</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {(events.data?.data ?? []).length === 0 && (
            <Table.Tr>
              <Table.Td colSpan={4}>{events.isPending ? 'Loading…' : 'No events.'}</Table.Td>
            </Table.Tr>
          )}
          {(events.data?.data ?? []).map((event) => (
            <Table.Tr key={event.id}>
              <Table.Td>
                <time dateTime={event.at}>{new Date(event.at).toLocaleString()}</time>
              </Table.Td>
              <Table.Td>{event.from_status ?? '—'}</Table.Td>
              <Table.Td>{event.to_status}</Table.Td>
              <Table.Td>{event.reason ?? '—'}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </section>
  );
}

export function ServerDetailPage() {
  const { serverId = '' } = useParams();
  const server = useServer(serverId);
  const clusters = useClusters();
  const data = server.data;
  const cluster = clusters.data?.data.find((c) => c.id === data?.cluster_id);

  return (
    <>
      <PageHeader title={data ? `Server ${data.name}` : 'Server'} actions={data && <ServerActions server={data} />} />
      <QueryError error={server.error} title="Could not load the server" />
      {data && (
        <Stack gap="lg">
          <Group gap="md">
            <StatusBadge status={data.status} />
            <Text size="sm">Cluster: {cluster ? `${cluster.name} (${cluster.kind})` : data.cluster_id}</Text>
            {data.agent_url && <Text size="sm">Agent: {data.agent_url}</Text>}
            <Text size="sm">
              Last seen: {data.last_seen_at ? new Date(data.last_seen_at).toLocaleString() : 'never'}
            </Text>
          </Group>
          <Capacity server={data} />
          <section aria-labelledby="gpus-heading">
            <Title order={2} size="h4" id="gpus-heading" mb="xs">
              GPUs
            </Title>
            {data.gpus.length === 0 ? (
              <Text size="sm">This server has no GPUs.</Text>
            ) : (
              <SimpleGrid cols={{ base: 1, sm: 2, lg: 4 }}>
                {data.gpus.map((gpu) => (
                  <GpuCard key={gpu.index} gpu={gpu} />
                ))}
              </SimpleGrid>
            )}
          </section>
          <Charts serverId={serverId} hasGpus={data.gpus.length > 0} />
          <Events serverId={serverId} status={data.status} />
        </Stack>
      )}
    </>
  );
}
