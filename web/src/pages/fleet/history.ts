/** History points as chart rows: each figure's bucket mean, or null when unknown. */
import type { ChartRow, ChartSeries } from '../../components/UsageChart';
import type { GpuUsagePoint, UsagePoint } from '../../api/types';

export const ALLOCATION_SERIES: ChartSeries[] = [
  { name: 'cpu_allocated', label: 'CPU', color: 'blue.7' },
  { name: 'ram_allocated', label: 'RAM', color: 'teal.7' },
  { name: 'storage_allocated', label: 'Storage', color: 'grape.7' },
  { name: 'gpu_allocated', label: 'GPU', color: 'orange.7' },
];

export const UTILISATION_SERIES: ChartSeries[] = [
  { name: 'cpu_used', label: 'CPU', color: 'blue.7' },
  { name: 'ram_used', label: 'RAM', color: 'teal.7' },
  { name: 'gpu_utilization', label: 'GPU', color: 'orange.7' },
  { name: 'gpu_memory_used', label: 'GPU memory', color: 'red.7' },
];

const FIGURES = [
  'cpu_allocated',
  'ram_allocated',
  'storage_allocated',
  'gpu_allocated',
  'cpu_used',
  'ram_used',
  'gpu_utilization',
  'gpu_memory_used',
] as const;

export function usageRows(points: readonly UsagePoint[]): ChartRow[] {
  return points.map((point) => {
    const row: ChartRow = { t: point.t };
    for (const figure of FIGURES) row[figure] = point[figure]?.avg ?? null;
    return row;
  });
}

const GPU_COLORS = ['blue.7', 'orange.7', 'teal.7', 'grape.7', 'red.7', 'cyan.7', 'lime.8', 'pink.7'];

/** One row per instant, one column per GPU (`gpu0`, `gpu1`...) of the chosen figure. */
export function gpuRows(
  gpus: readonly { index: number; points: readonly GpuUsagePoint[] }[],
  figure: 'allocated' | 'utilization' | 'memory_used',
): { rows: ChartRow[]; series: ChartSeries[] } {
  const byTime = new Map<string, ChartRow>();
  for (const gpu of gpus) {
    for (const point of gpu.points) {
      const row = byTime.get(point.t) ?? { t: point.t };
      row[`gpu${gpu.index}`] = point[figure]?.avg ?? null;
      byTime.set(point.t, row);
    }
  }
  const rows = [...byTime.values()].sort((a, b) => a.t.localeCompare(b.t));
  const series = gpus.map((gpu, i) => ({
    name: `gpu${gpu.index}`,
    label: `GPU ${gpu.index}`,
    color: GPU_COLORS[i % GPU_COLORS.length],
  }));
  return { rows, series };
}
