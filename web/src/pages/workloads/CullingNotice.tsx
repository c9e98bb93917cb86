/** A workload's idle culling and maximum lifetime: the warning and the time left before
 * its stop, or the policy that applies while nothing is announced. */
import { Alert, Text } from '@mantine/core';
import { useWorkloadCulling } from '../../api/queries/culling';
import type { Workload, WorkloadCulling } from '../../api/types';

function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h) return m ? `${h} h ${m} min` : `${h} h`;
  if (m) return `${m} min`;
  return `${s} s`;
}

function policyText(c: WorkloadCulling): string {
  const parts = [];
  if (c.idle_culling) {
    parts.push(`stopped when below ${c.threshold_pct} % for ${duration(c.window_s)}`);
  } else {
    parts.push(`not culled when idle${c.off_by ? ` (${c.off_by})` : ''}`);
  }
  if (c.max_lifetime_s != null) {
    parts.push(`maximum lifetime ${duration(c.max_lifetime_s)}${c.lifetime_source ? ` (${c.lifetime_source})` : ''}`);
  }
  if (c.no_signal) parts.push(`never culled when idle: ${c.no_signal_reason ?? 'its runtime reports no utilisation'}`);
  return parts.join(' · ');
}

export function CullingNotice({ workload }: { workload: Workload }) {
  const running = workload.status === 'running';
  const culling = useWorkloadCulling(workload.id, running);
  const c = culling.data;
  if (!c || !running) return null;
  if (c.stop_at != null && c.seconds_left != null) {
    const idle = c.idle_stop_at != null && c.idle_stop_at === c.stop_at;
    return (
      // Not yellow or orange: their text is under AA contrast (theme.ts).
      <Alert color="grape" title={idle ? 'Idle: will be stopped' : 'Maximum lifetime: will be stopped'} data-testid="workload-culling">
        <Text size="sm">
          Stopped at {new Date(c.stop_at).toLocaleString()} (in {duration(c.seconds_left)})
          {idle
            ? `: idle since ${c.idle_since ? new Date(c.idle_since).toLocaleString() : '—'}, at most ${c.idle_max_pct ?? 0} % — using it again cancels the stop.`
            : '.'}
        </Text>
      </Alert>
    );
  }
  return (
    <Text size="sm" c="dimmed" data-testid="workload-culling">
      Idle culling: {policyText(c)}
    </Text>
  );
}
