/**
 * SLOT: the workload detail page's "Terminal" tab. The terminal helper replaces this file
 * (xterm.js over GET /api/v1/workloads/{id}/exec); keep the export's name and props.
 */
import { Text } from '@mantine/core';
import type { Workload } from '../../../api/types';

export function WorkloadTerminal({ workload }: { workload: Workload }) {
  return (
    <Text c="dimmed" data-testid="terminal-placeholder">
      A terminal into {workload.name} will be here.
    </Text>
  );
}
