/**
 * The workload detail page's "Terminal" tab (slot filled by console/TerminalPanel.tsx).
 * Keyed on whether it runs: a workload that starts (or stops) while the tab is open gets a
 * fresh connection, and the server's answer with it.
 */
import type { Workload } from '../../../api/types';
import { TerminalPanel } from '.';

export function WorkloadTerminal({ workload }: { workload: Workload }) {
  return <TerminalPanel key={String(workload.status === 'running')} workloadId={workload.id} />;
}
