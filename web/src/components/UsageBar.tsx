import { Group, Progress, Text, Tooltip } from '@mantine/core';

/** Percent of `total` that `used` is (0 when there is no total). */
export function percent(used: number, total: number): number {
  return total > 0 ? Math.min(100, Math.max(0, (used / total) * 100)) : 0;
}

function colorFor(value: number): string {
  if (value >= 90) return 'red.8';
  if (value >= 70) return 'orange.8';
  return 'blue.8';
}

/** A labelled bar: "CPU 12 / 64" with a progressbar named for screen readers. */
export function UsageBar({
  label,
  used,
  total,
  unit = '',
  compact = false,
}: {
  label: string;
  used: number;
  total: number;
  unit?: string;
  compact?: boolean;
}) {
  const value = percent(used, total);
  const text = `${formatAmount(used)} / ${formatAmount(total)}${unit ? ` ${unit}` : ''}`;
  const bar = (
    <Progress.Root size={compact ? 'md' : 'lg'} style={{ flex: 1, minWidth: 60 }}>
      <Progress.Section value={value} color={colorFor(value)} aria-label={`${label} ${text} (${Math.round(value)}%)`} />
    </Progress.Root>
  );
  if (compact) {
    return (
      <Tooltip label={`${label}: ${text}`}>
        <Group gap={6} wrap="nowrap">
          {bar}
          <Text size="xs" w={34} ta="right">
            {Math.round(value)}%
          </Text>
        </Group>
      </Tooltip>
    );
  }
  return (
    <div>
      <Group justify="space-between" gap="xs">
        <Text size="sm" fw={500}>
          {label}
        </Text>
        <Text size="sm">
          {text} · {Math.round(value)}%
        </Text>
      </Group>
      {bar}
    </div>
  );
}

/** 3, 2.5, 0.25: at most two decimals, no trailing zeros. */
export function formatAmount(value: number): string {
  return Number.isInteger(value) ? String(value) : String(Math.round(value * 100) / 100);
}
