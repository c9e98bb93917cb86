/**
 * The workload detail page's "Files" tab (slot filled by console/FilesPanel.tsx), listed
 * afresh when the workload starts or stops while the tab is open.
 */
import type { Workload } from '../../../api/types';
import { FilesPanel } from '.';

export function WorkloadFiles({ workload }: { workload: Workload }) {
  return <FilesPanel key={String(workload.status === 'running')} workloadId={workload.id} />;
}
