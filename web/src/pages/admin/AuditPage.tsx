import { Alert, Code, Group, Text, TextInput } from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { IconShieldCheck, IconShieldX } from '@tabler/icons-react';
import { useState } from 'react';
import { useAuditEvents, useAuditVerification } from '../../api/queries/admin';
import type { AuditEvent } from '../../api/types';
import { PageHeader } from '../../components/PageHeader';
import { QueryError } from '../../components/QueryError';
import { READABLE_ALERT } from '../../components/a11y';
import { VirtualTable, type Column } from '../../components/VirtualTable';

const columns: Column<AuditEvent>[] = [
  {
    key: 'at',
    header: 'When',
    width: 190,
    cell: (e) => <time dateTime={e.at}>{new Date(e.at).toLocaleString()}</time>,
  },
  { key: 'actor', header: 'Actor', cell: (e) => e.actor_email ?? e.actor_id ?? 'system' },
  { key: 'action', header: 'Action', cell: (e) => <Code>{e.action}</Code> },
  { key: 'target', header: 'Target', cell: (e) => `${e.target_type}${e.target_id ? ` ${e.target_id}` : ''}` },
  { key: 'ip', header: 'From', cell: (e) => e.ip ?? '—', width: 120 },
  {
    key: 'details',
    header: 'Details',
    cell: (e) => {
      const text = JSON.stringify(e.details);
      return text === '{}' ? '—' : <Text size="xs" lineClamp={2} style={{ wordBreak: 'break-all' }}>{text}</Text>;
    },
  },
];

function Verification() {
  const verify = useAuditVerification();
  if (verify.error) return <QueryError error={verify.error} title="Could not verify the audit chain" />;
  if (!verify.data) return <Text size="sm">Verifying the audit chain…</Text>;
  const result = verify.data;
  return result.intact ? (
    <Alert color="green" styles={READABLE_ALERT} icon={<IconShieldCheck size={18} />} title="Audit chain intact" data-testid="audit-verification" data-intact="true">
      {result.checked} event{result.checked === 1 ? '' : 's'} checked; each links to the one before it.
      {result.head_hash && (
        <>
          {' '}
          Head: <Code>{result.head_hash.slice(0, 16)}…</Code>
        </>
      )}
    </Alert>
  ) : (
    <Alert color="red" styles={READABLE_ALERT} icon={<IconShieldX size={18} />} title="Audit chain broken" role="alert" data-testid="audit-verification" data-intact="false">
      {result.problem ?? 'An event does not match its hash.'} First bad event: {result.first_bad_id ?? 'unknown'} (after{' '}
      {result.checked} checked).
    </Alert>
  );
}

/** A datetime-local value ("2026-12-04T09:30") as an ISO instant, or undefined. */
function isoOf(local: string): string | undefined {
  if (!local) return undefined;
  const at = new Date(local);
  return Number.isNaN(at.getTime()) ? undefined : at.toISOString();
}

export function AuditPage() {
  const [actor, setActor] = useState('');
  const [action, setAction] = useState('');
  const [target, setTarget] = useState('');
  const [since, setSince] = useState('');
  const [until, setUntil] = useState('');
  // Debounced as one string: an object would be new at every render.
  const [filterJson] = useDebouncedValue(JSON.stringify({ actor, action, target, since, until }), 300);
  const filter = JSON.parse(filterJson) as { actor: string; action: string; target: string; since: string; until: string };
  const [targetType, targetId] = filter.target.trim().split(/\s+/, 2);
  const events = useAuditEvents({
    actor: filter.actor.trim(),
    action: filter.action.trim(),
    target_type: targetType,
    target_id: targetId,
    since: isoOf(filter.since),
    until: isoOf(filter.until),
  });

  return (
    <>
      <PageHeader title="Audit log" />
      <Verification />
      <Group mt="md" mb="sm" align="end">
        <TextInput label="Actor (email or id)" value={actor} onChange={(e) => setActor(e.currentTarget.value)} maxLength={320} />
        <TextInput
          label="Action"
          description="or a prefix: workload."
          value={action}
          onChange={(e) => setAction(e.currentTarget.value)}
          maxLength={64}
        />
        <TextInput
          label="Target"
          description="type, then id: server 0f3a…"
          value={target}
          onChange={(e) => setTarget(e.currentTarget.value)}
          maxLength={100}
        />
        <TextInput label="Since" type="datetime-local" value={since} onChange={(e) => setSince(e.currentTarget.value)} />
        <TextInput label="Until" type="datetime-local" value={until} onChange={(e) => setUntil(e.currentTarget.value)} />
      </Group>
      <QueryError error={events.error} title="Could not load the audit log" />
      {events.data && (
        <Text size="sm" c="dimmed" mb="xs">
          {events.data.count} event{events.data.count === 1 ? '' : 's'}
          {events.data.count > events.data.data.length ? ` (newest ${events.data.data.length} shown)` : ''}
        </Text>
      )}
      <VirtualTable
        label="Audit events"
        testId="audit-table"
        rows={events.data?.data ?? []}
        columns={columns}
        rowKey={(e) => String(e.id)}
        empty={events.isPending ? 'Loading…' : 'No events match.'}
        height="calc(100vh - 360px)"
      />
    </>
  );
}
