/** "Over time": the window control and the allocation and utilisation charts of one
 * history (the fleet's or a server's); a page adds its own charts as children. */
import { Card, Group, SimpleGrid, Title } from '@mantine/core';
import type { ReactNode } from 'react';
import type { HistoryWindow, UsagePoint } from '../../api/types';
import { QueryError } from '../../components/QueryError';
import { UsageChart, WindowControl } from '../../components/UsageChart';
import { ALLOCATION_SERIES, UTILISATION_SERIES, usageRows } from './history';

export function UsageHistorySection({
  headingId,
  window,
  onWindowChange,
  points,
  error,
  errorTitle,
  children,
}: {
  headingId: string;
  window: HistoryWindow;
  onWindowChange: (value: HistoryWindow) => void;
  points: readonly UsagePoint[];
  error: unknown;
  errorTitle: string;
  children?: ReactNode;
}) {
  const rows = usageRows(points);
  return (
    <section aria-labelledby={headingId}>
      <Group justify="space-between" mb="xs">
        <Title order={2} size="h4" id={headingId}>
          Over time
        </Title>
        <WindowControl value={window} onChange={onWindowChange} />
      </Group>
      <QueryError error={error} title={errorTitle} />
      <SimpleGrid cols={{ base: 1, lg: 2 }}>
        <Card withBorder>
          <UsageChart title="Allocation (% of capacity)" rows={rows} series={ALLOCATION_SERIES} window={window} />
        </Card>
        <Card withBorder>
          <UsageChart title="Utilisation (%)" rows={rows} series={UTILISATION_SERIES} window={window} />
        </Card>
        {children}
      </SimpleGrid>
    </section>
  );
}
