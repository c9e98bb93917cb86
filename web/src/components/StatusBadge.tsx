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

/** A workload (or server) status; the dark "outline" look keeps text contrast AA. */
export function StatusBadge({ status }: { status: string }) {
  const color = COLORS[status] ?? 'gray';
  return (
    <Badge color={`${color}.9`} variant="outline" data-status={status}>
      {status}
    </Badge>
  );
}
