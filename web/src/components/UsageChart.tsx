/**
 * Utilisation and allocation over time (from /servers/{id}/history and /fleet/history):
 * percent on the y axis, one line per series. Charts are @mantine/charts (recharts),
 * bundled like everything else.
 */
import { Loader, SegmentedControl, Text } from '@mantine/core';
import { Suspense, lazy } from 'react';
import type { HistoryWindow } from '../api/types';

// recharts is half the bundle: fetched when the first chart is drawn, not on login.
const UsageLineChart = lazy(() => import('./UsageLineChart'));

export interface ChartSeries {
  name: string;
  label: string;
  color: string;
}

export type ChartRow = { t: string } & Record<string, number | string | null>;

export function UsageChart({
  title,
  rows,
  series,
  window,
  height = 220,
}: {
  title: string;
  rows: ChartRow[];
  series: ChartSeries[];
  window: HistoryWindow;
  height?: number;
}) {
  const data = rows.map((row) => ({ ...row, t: timeLabel(row.t, window) }));
  return (
    <figure style={{ margin: 0 }} aria-label={title}>
      <Text component="figcaption" fw={500} size="sm" mb={4}>
        {title}
      </Text>
      {data.length === 0 ? (
        <Text size="sm" c="dimmed">
          No samples yet in this window.
        </Text>
      ) : (
        <Suspense fallback={<Loader size="sm" role="status" aria-label="Loading the chart" />}>
          <UsageLineChart data={data} series={series} height={height} />
        </Suspense>
      )}
    </figure>
  );
}

function timeLabel(iso: string, window: HistoryWindow): string {
  const at = new Date(iso);
  if (window === '7d' || window === '30d') {
    return at.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  }
  return at.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

/** The window chooser every chart page shares: last hour or last day. */
export function WindowControl({ value, onChange }: { value: HistoryWindow; onChange: (value: HistoryWindow) => void }) {
  return (
    <SegmentedControl
      aria-label="Chart window"
      value={value}
      onChange={(next) => onChange(next as HistoryWindow)}
      data={[
        { value: '1h', label: 'Last hour' },
        { value: '1d', label: 'Last day' },
      ]}
    />
  );
}
