/** The chart itself (recharts through @mantine/charts), loaded only by pages that draw one. */
import '@mantine/charts/styles.css';
import { LineChart } from '@mantine/charts';
import type { ChartRow, ChartSeries } from './UsageChart';

export default function UsageLineChart({ data, series, height }: { data: ChartRow[]; series: ChartSeries[]; height: number }) {
  return (
    <LineChart
      h={height}
      data={data}
      dataKey="t"
      series={series}
      curveType="monotone"
      withDots={false}
      withLegend
      connectNulls
      unit="%"
      yAxisProps={{ domain: [0, 100] }}
      valueFormatter={(value) => String(Math.round(value))}
    />
  );
}
