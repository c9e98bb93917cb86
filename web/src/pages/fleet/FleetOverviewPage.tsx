import { Card, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import { useState } from 'react';
import { useFleetHistory, useFleetOverview } from '../../api/queries/fleet';
import type { HistoryWindow, UsagePoint } from '../../api/types';
import { PageHeader } from '../../components/PageHeader';
import { QueryError } from '../../components/QueryError';
import { UsageBar, formatAmount } from '../../components/UsageBar';
import { UsageHistorySection } from './UsageHistorySection';

const DIMENSIONS = [
  { key: 'cpu', label: 'CPU', unit: 'cores', used: 'cpu_used' },
  { key: 'ram_gb', label: 'RAM', unit: 'GB', used: 'ram_used' },
  { key: 'storage_gb', label: 'Storage', unit: 'GB', used: null },
  { key: 'gpu', label: 'GPU', unit: 'devices', used: 'gpu_utilization' },
] as const;

function StatCard({ label, value }: { label: string; value: number }) {
  return (
    <Card withBorder padding="sm" data-testid={`servers-${label.toLowerCase()}`}>
      <Text size="sm" c="dimmed">
        {label}
      </Text>
      <Text fw={700} size="xl">
        {value}
      </Text>
    </Card>
  );
}

/** The latest known value of a figure in the window (the newest point that has it). */
function latest(points: readonly UsagePoint[], figure: keyof UsagePoint): number | null {
  for (let i = points.length - 1; i >= 0; i--) {
    const value = points[i][figure];
    if (value && typeof value === 'object') return value.avg;
  }
  return null;
}

export function FleetOverviewPage() {
  const [window, setWindow] = useState<HistoryWindow>('1h');
  const overview = useFleetOverview();
  const history = useFleetHistory(window);
  const points = history.data?.points ?? [];
  const data = overview.data;

  return (
    <>
      <PageHeader title="Fleet overview" />
      <QueryError error={overview.error} title="Could not load the fleet overview" />
      {data && (
        <Stack gap="lg">
          <section aria-labelledby="servers-heading">
            <Title order={2} size="h4" id="servers-heading" mb="xs">
              Servers
            </Title>
            <SimpleGrid cols={{ base: 2, sm: 5 }}>
              <StatCard label="Total" value={data.servers.total} />
              <StatCard label="Online" value={data.servers.online} />
              <StatCard label="Offline" value={data.servers.offline} />
              <StatCard label="Draining" value={data.servers.draining} />
              <StatCard label="Maintenance" value={data.servers.maintenance} />
            </SimpleGrid>
          </section>

          <section aria-labelledby="resources-heading">
            <Title order={2} size="h4" id="resources-heading" mb="xs">
              Resources
            </Title>
            <Table withTableBorder data-testid="fleet-resources">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th scope="col">Dimension</Table.Th>
                  <Table.Th scope="col">Capacity</Table.Th>
                  <Table.Th scope="col">Allocated</Table.Th>
                  <Table.Th scope="col">Free</Table.Th>
                  <Table.Th scope="col" style={{ width: '30%' }}>
                    Allocation
                  </Table.Th>
                  <Table.Th scope="col">Utilisation now</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {DIMENSIONS.map((dimension) => {
                  const used = dimension.used ? latest(points, dimension.used) : null;
                  return (
                    <Table.Tr key={dimension.key}>
                      <Table.Th scope="row">{dimension.label}</Table.Th>
                      <Table.Td>
                        {formatAmount(data.capacity[dimension.key])} {dimension.unit}
                      </Table.Td>
                      <Table.Td>{formatAmount(data.allocated[dimension.key])}</Table.Td>
                      <Table.Td>{formatAmount(data.free[dimension.key])}</Table.Td>
                      <Table.Td>
                        <UsageBar
                          compact
                          label={`${dimension.label} allocated`}
                          used={data.allocated[dimension.key]}
                          total={data.capacity[dimension.key]}
                          unit={dimension.unit}
                        />
                      </Table.Td>
                      <Table.Td>{used === null ? '—' : `${Math.round(used)}%`}</Table.Td>
                    </Table.Tr>
                  );
                })}
              </Table.Tbody>
            </Table>
          </section>

          <section aria-labelledby="models-heading">
            <Title order={2} size="h4" id="models-heading" mb="xs">
              GPU models
            </Title>
            <Table withTableBorder data-testid="gpu-models">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th scope="col">Model</Table.Th>
                  <Table.Th scope="col">Servers</Table.Th>
                  <Table.Th scope="col">Devices</Table.Th>
                  <Table.Th scope="col">Whole devices free</Table.Th>
                  <Table.Th scope="col">Allocated (devices)</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {data.gpu_models.length === 0 && (
                  <Table.Tr>
                    <Table.Td colSpan={5}>No GPUs in the fleet.</Table.Td>
                  </Table.Tr>
                )}
                {data.gpu_models.map((model) => (
                  <Table.Tr key={model.model}>
                    <Table.Th scope="row">{model.model}</Table.Th>
                    <Table.Td>{model.servers}</Table.Td>
                    <Table.Td>{model.devices}</Table.Td>
                    <Table.Td>{model.free_devices}</Table.Td>
                    <Table.Td>{formatAmount(model.allocated)}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </section>

          <section aria-labelledby="free-now-heading">
            <Title order={2} size="h4" id="free-now-heading" mb="xs">
              Largest request that could start now
            </Title>
            <Table withTableBorder data-testid="free-now">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th scope="col">GPU model</Table.Th>
                  <Table.Th scope="col">Whole GPUs on one server</Table.Th>
                  <Table.Th scope="col">Largest GPU share</Table.Th>
                  <Table.Th scope="col">CPU cores</Table.Th>
                  <Table.Th scope="col">RAM (GB)</Table.Th>
                  <Table.Th scope="col">Storage (GB)</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {data.free_now.map((free) => (
                  <Table.Tr key={free.gpu_model ?? 'none'}>
                    <Table.Th scope="row">{free.gpu_model ?? 'No GPU'}</Table.Th>
                    <Table.Td>{free.gpu_model ? free.gpu : '—'}</Table.Td>
                    <Table.Td>{free.gpu_model ? formatAmount(free.gpu_share) : '—'}</Table.Td>
                    <Table.Td>{formatAmount(free.cpu)}</Table.Td>
                    <Table.Td>{formatAmount(free.ram_gb)}</Table.Td>
                    <Table.Td>{formatAmount(free.storage_gb)}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
            <Text size="xs" c="dimmed" mt={4}>
              On one online server, before team quotas.
            </Text>
          </section>

          <UsageHistorySection
            headingId="history-heading"
            window={window}
            onWindowChange={setWindow}
            points={points}
            error={history.error}
            errorTitle="Could not load the fleet history"
          />
        </Stack>
      )}
    </>
  );
}
