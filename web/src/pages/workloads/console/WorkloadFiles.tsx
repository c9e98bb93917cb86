/**
 * SLOT: the workload detail page's "Files" tab. The files helper replaces this file
 * (GET/PUT/DELETE /api/v1/workloads/{id}/files); keep the export's name and props.
 */
import { Text } from '@mantine/core';
import type { Workload } from '../../../api/types';

export function WorkloadFiles({ workload }: { workload: Workload }) {
  return (
    <Text c="dimmed" data-testid="files-placeholder">
      A file browser for {workload.name}&apos;s workspace will be here.
    </Text>
  );
}
