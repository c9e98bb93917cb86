/**
 * One workload: its header (status, why it waits, where it runs, ports, age, whether it
 * came from a warm pool), actions (edit resources, stop, delete), and tabs: the status timeline from its events, its logs
 * (followed live), and the Terminal and Files slots (pages/workloads/console/). Live
 * events keep all of it current without reload (api/live.ts).
 */
import {
  Alert,
  Anchor,
  Badge,
  Button,
  Code,
  Group,
  Paper,
  ScrollArea,
  SimpleGrid,
  Stack,
  Tabs,
  Text,
  Timeline,
} from '@mantine/core';
import {
  IconAdjustments,
  IconFileText,
  IconFolder,
  IconHistory,
  IconPlayerStop,
  IconTerminal2,
  IconTrash,
} from '@tabler/icons-react';
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { Link, useNavigate, useParams } from 'react-router-dom';
import { ApiError } from '../../api/client';
import { useWorkload, useWorkloadEvents, useWorkloadLogs } from '../../api/queries/workloads';
import type { Workload } from '../../api/types';
import { PageHeader } from '../../components/PageHeader';
import { CullingNotice } from './CullingNotice';
import { QueryError } from '../../components/QueryError';
import { StatusBadge } from '../../components/StatusBadge';
import { age } from '../../components/format';
import { EditResourcesModal } from './EditResourcesModal';
import { WorkloadPorts } from './WorkloadPorts';
import { isFinished, useWorkloadActions } from './actions';
import { WorkloadFiles } from './console/WorkloadFiles';
import { WorkloadTerminal } from './console/WorkloadTerminal';
import { amount } from './limits';

/** Statuses whose reason says why it is not running (shown as a call-out). */
const WAITING = new Set(['pending', 'preempted', 'lost', 'failed']);

function Fact({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div>
      <Text size="xs" c="dimmed" fw={700} tt="uppercase" component="dt">
        {label}
      </Text>
      <Text size="sm" component="dd" m={0}>
        {children}
      </Text>
    </div>
  );
}

function resources(w: Workload): string {
  const parts = [`${amount(w.cpu)} CPU`, `${amount(w.ram_gb)} GB RAM`];
  if (w.storage_gb) parts.push(`${amount(w.storage_gb)} GB storage`);
  if (w.gpu) parts.push(`${amount(w.gpu)} GPU${w.gpu_model ? ` ${w.gpu_model}` : ''}`);
  return parts.join(' · ');
}

/** Where its start came from: a warm pool's container taken at launch, or a cold start. */
function startOf(w: Workload): string {
  if (w.from_pool) return 'from a warm pool (started at once)';
  if (w.pool_id) return 'a warm container of a pool';
  return 'cold start';
}

/** Re-render every `ms` so that ages ("5 min") stay true; reads nothing. */
function useNow(ms: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), ms);
    return () => window.clearInterval(timer);
  }, [ms]);
  return now;
}

function WorkloadHeader({ workload }: { workload: Workload }) {
  const now = useNow(15_000);
  const waiting = WAITING.has(workload.status) && workload.reason;
  return (
    <Stack gap="sm" mb="md">
      <Group gap="sm" data-testid="workload-status">
        <StatusBadge status={workload.status} />
        {workload.reason && !waiting && (
          <Text size="sm" c="dimmed">
            {workload.reason}
          </Text>
        )}
      </Group>
      {waiting && (
        <Alert
          // Not yellow or orange: their text is under AA contrast (theme.ts).
          color={workload.status === 'failed' ? 'red' : workload.status === 'preempted' ? 'grape' : 'blue'}
          title={workload.status === 'failed' ? 'Why it failed' : 'Why it is not running'}
          data-testid="workload-reason"
        >
          {workload.reason}
        </Alert>
      )}
      <Paper withBorder p="sm">
        <SimpleGrid cols={{ base: 2, sm: 3, lg: 4 }} component="dl" m={0}>
          <Fact label="Server">
            <span data-testid="workload-server">{workload.server_name ?? '—'}</span>
          </Fact>
          <Fact label="GPU indices">
            <span data-testid="workload-gpus">
              {workload.gpu_indices.length ? workload.gpu_indices.join(', ') : workload.gpu ? 'not placed' : '—'}
            </span>
          </Fact>
          <Fact label="Ports">
            <WorkloadPorts workload={workload} />
          </Fact>
          <Fact label="Age">
            <time dateTime={workload.created_at} title={new Date(workload.created_at).toLocaleString()}>
              {age(workload.created_at, now)}
            </time>
          </Fact>
          <Fact label="Image">
            <Code>{workload.image}</Code>
          </Fact>
          <Fact label="Start">
            <span data-testid="workload-start" data-from-pool={workload.from_pool ? 'true' : 'false'}>
              {startOf(workload)}
            </span>
          </Fact>
          <Fact label="Resources">
            <span data-testid="workload-resources">{resources(workload)}</span>
          </Fact>
          <Fact label="Priority">
            {workload.priority}
            {workload.preemptible ? ', preemptible' : ', not preemptible'}
          </Fact>
          <Fact label="Preemptions">{workload.preemption_count}</Fact>
          <Fact label="Owner">{workload.owner}</Fact>
          {workload.started_at && (
            <Fact label="Started">
              <time dateTime={workload.started_at}>{age(workload.started_at, now)} ago</time>
            </Fact>
          )}
          {workload.duration_s && <Fact label="Duration">{workload.duration_s} s (simulated)</Fact>}
          {workload.replicas > 1 && (
            <Fact label={`Replicas (${workload.replicas}${workload.gang ? ', gang' : ''})`}>
              <span data-testid="workload-replicas">
              {workload.placements.length
                ? workload.placements
                    .map((p) => `#${p.replica} ${p.server_name}${p.gpu_indices.length ? ` [${p.gpu_indices.join(', ')}]` : ''}`)
                    .join(' · ')
                : 'none placed'}
              </span>
            </Fact>
          )}
        </SimpleGrid>
      </Paper>
    </Stack>
  );
}

function StatusTimeline({ workloadId }: { workloadId: string }) {
  const events = useWorkloadEvents(workloadId);
  if (events.error) return <QueryError error={events.error} title="Could not read the timeline" />;
  if (!events.data) return <Text c="dimmed">Loading…</Text>;
  const items = events.data.data;
  return (
    <Timeline active={items.length - 1} bulletSize={18} lineWidth={2} data-testid="status-timeline" aria-label="Status timeline">
      {items.map((event) => (
        <Timeline.Item
          key={event.id}
          title={
            <Group gap="xs">
              <Text fw={600} size="sm">
                {event.from_status ? `${event.from_status} → ${event.to_status}` : event.to_status}
              </Text>
            </Group>
          }
          data-status={event.to_status}
        >
          {event.reason && (
            <Text size="sm" c="dimmed">
              {event.reason}
            </Text>
          )}
          <Text size="xs" c="dimmed">
            <time dateTime={event.at}>{new Date(event.at).toLocaleString()}</time>
          </Text>
        </Timeline.Item>
      ))}
    </Timeline>
  );
}

function Logs({ workload }: { workload: Workload }) {
  const logs = useWorkloadLogs(workload.id, workload.updated_at);
  const viewport = useRef<HTMLDivElement>(null);
  const [stick, setStick] = useState(true);

  useEffect(() => {
    const element = viewport.current;
    if (element && stick) element.scrollTop = element.scrollHeight;
  }, [logs.text, stick]);

  return (
    <Stack gap="xs">
      <Group justify="space-between">
        <Badge variant="dot" color={logs.following ? 'green' : 'gray'} data-testid="logs-mode">
          {logs.following ? 'following' : 'updates on each change'}
        </Badge>
        <Text size="xs" c="dimmed">
          The last lines; scroll up to stop following the end.
        </Text>
      </Group>
      <QueryError error={logs.error} title="Could not read the logs" />
      <ScrollArea
        h={420}
        viewportRef={viewport}
        onScrollPositionChange={({ y }) => {
          const element = viewport.current;
          if (element) setStick(y + element.clientHeight >= element.scrollHeight - 8);
        }}
        viewportProps={{ tabIndex: 0, 'aria-label': 'Logs', role: 'region' } as Record<string, unknown>}
      >
        <Code block data-testid="workload-logs" style={{ whiteSpace: 'pre-wrap', minHeight: 400 }}>
          {logs.text || (logs.following ? '' : 'No output yet.')}
        </Code>
      </ScrollArea>
    </Stack>
  );
}

export function WorkloadDetailPage() {
  const { workloadId = '' } = useParams();
  const workload = useWorkload(workloadId);
  const navigate = useNavigate();
  const { confirmStop, confirmDelete } = useWorkloadActions();
  const [editing, setEditing] = useState(false);
  const w = workload.data;

  if (workload.error instanceof ApiError && workload.error.status === 404) {
    return (
      <>
        <PageHeader title="No such workload" />
        <Text>
          It was deleted, or you may not see it. <Anchor component={Link} to="/workloads">Back to my workloads</Anchor>
        </Text>
      </>
    );
  }

  return (
    <>
      <PageHeader
        title={w ? w.name : 'Workload'}
        actions={
          w && (
            <Group gap="sm">
              <Button
                variant="default"
                leftSection={<IconAdjustments size={16} />}
                onClick={() => setEditing(true)}
                disabled={isFinished(w)}
              >
                Edit resources
              </Button>
              <Button
                variant="default"
                color="red"
                leftSection={<IconPlayerStop size={16} />}
                onClick={() => confirmStop(w)}
                disabled={isFinished(w)}
              >
                Stop
              </Button>
              <Button
                color="red.9"
                leftSection={<IconTrash size={16} />}
                onClick={() => confirmDelete(w, () => navigate('/workloads', { replace: true }))}
              >
                Delete
              </Button>
            </Group>
          )
        }
      />
      <QueryError error={workload.error} title="Could not load the workload" />
      {!w && !workload.error && <Text c="dimmed">Loading…</Text>}
      {w && (
        <>
          <WorkloadHeader workload={w} />
          <CullingNotice workload={w} />
          {editing && <EditResourcesModal workload={w} opened={editing} onClose={() => setEditing(false)} />}
          <Tabs defaultValue="timeline" keepMounted={false}>
            <Tabs.List>
              <Tabs.Tab value="timeline" leftSection={<IconHistory size={16} />}>
                Timeline
              </Tabs.Tab>
              <Tabs.Tab value="logs" leftSection={<IconFileText size={16} />}>
                Logs
              </Tabs.Tab>
              {/* SLOTS: the terminal and files helpers replace console/WorkloadTerminal.tsx and console/WorkloadFiles.tsx. */}
              <Tabs.Tab value="terminal" leftSection={<IconTerminal2 size={16} />}>
                Terminal
              </Tabs.Tab>
              <Tabs.Tab value="files" leftSection={<IconFolder size={16} />}>
                Files
              </Tabs.Tab>
            </Tabs.List>
            <Tabs.Panel value="timeline" pt="md">
              <StatusTimeline workloadId={w.id} />
            </Tabs.Panel>
            <Tabs.Panel value="logs" pt="md">
              <Logs workload={w} />
            </Tabs.Panel>
            <Tabs.Panel value="terminal" pt="md">
              <WorkloadTerminal workload={w} />
            </Tabs.Panel>
            <Tabs.Panel value="files" pt="md">
              <WorkloadFiles workload={w} />
            </Tabs.Panel>
          </Tabs>
        </>
      )}
    </>
  );
}
