import { Badge } from '@mantine/core';

const COLORS: Record<string, string> = {
  running: 'green',
  pending: 'yellow',
  starting: 'blue',
  stopping: 'orange',
  stopped: 'gray',
  completed: 'teal',
  failed: 'red',
  preempted: 'grape',
  // servers
  online: 'green',
  offline: 'red',
  draining: 'orange',
  maintenance: 'yellow',
};

/** A workload (or server) status: a coloured dot beside text in the text colour (AA contrast
 * for every status colour, yellow included). */
export function StatusBadge({ status }: { status: string }) {
  const color = COLORS[status] ?? 'gray';
  return (
    <Badge color={color} variant="dot" data-status={status}>
      {status}
    </Badge>
  );
}
