/**
 * Warm pools (operators and admins): each pool's status (target, available, warming,
 * assigned, failed) and its warm containers (index, name, host port, state, status,
 * the user it is assigned to); create, resize, reinitialise, release an assigned
 * container (its user's workload stops and a fresh one replaces it), delete. Kept current by the live stream (api/live.ts) and a refetch
 * interval (api/queries/pools.ts).
 */
import { Anchor, Badge, Button, Code, Group, NumberInput, Paper, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import { IconPlus, IconRefresh, IconTrash } from '@tabler/icons-react';
import { useState, type FormEvent } from 'react';
import { Link } from 'react-router-dom';
import { useUsers } from '../../api/queries/admin';
import { useClusters, useServers } from '../../api/queries/fleet';
import { useDeletePool, useReinitialisePool, useReleasePoolMember, usePools, useUpdatePool } from '../../api/queries/pools';
import { useMe } from '../../api/queries/session';
import type { Pool, PoolMember } from '../../api/types';
import { ADMINS, mayOpen } from '../../auth/roles';
import { PageHeader } from '../../components/PageHeader';
import { QueryError } from '../../components/QueryError';
import { StatusBadge } from '../../components/StatusBadge';
import { confirmAction } from '../../components/confirm';
import { notifyError, notifySuccess } from '../../components/notify';
import { amount } from '../workloads/limits';
import { CreatePoolModal, MAX_TARGET_SIZE, checkTargetSize } from './CreatePoolModal';

/** A member's workload statuses that count as failed (the pool loop replaces them). */
const FAILED = new Set(['failed', 'lost']);

function Count({ label, value, testId }: { label: string; value: number; testId: string }) {
  return (
    <div>
      <Text size="xs" c="dimmed" fw={700} tt="uppercase" component="dt">
        {label}
      </Text>
      <Text size="lg" fw={600} component="dd" m={0} data-testid={testId}>
        {value}
      </Text>
    </div>
  );
}

function ResizeForm({ pool }: { pool: Pool }) {
  const update = useUpdatePool();
  const [size, setSize] = useState<number | string>(pool.target_size);
  const [error, setError] = useState<string | null>(null);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const problem = checkTargetSize(size);
    setError(problem);
    if (problem) return;
    update.mutate(
      { id: pool.id, body: { target_size: Number(size) } },
      {
        onSuccess: (changed) => notifySuccess(`Pool ${changed.name} resized to ${changed.target_size}.`),
        onError: (caught) => notifyError(caught, `Pool ${pool.name} was not resized`),
      },
    );
  };
  return (
    <form onSubmit={submit} aria-label={`Resize ${pool.name}`}>
      <Group align="end" gap="xs">
        <NumberInput
          label={`Target size of ${pool.name}`}
          min={0}
          max={MAX_TARGET_SIZE}
          allowDecimal={false}
          value={size}
          onChange={(value) => {
            setSize(value);
            setError(null);
          }}
          error={error}
          w={200}
        />
        <Button type="submit" variant="default" loading={update.isPending} disabled={Number(size) === pool.target_size}>
          Resize
        </Button>
      </Group>
    </form>
  );
}

function Members({ pool, userNames }: { pool: Pool; userNames: Map<string, string> }) {
  const release = useReleasePoolMember();
  const confirmRelease = (member: PoolMember) =>
    confirmAction({
      title: `Release ${member.container_name}?`,
      message: "It is taken back from its user: their workload stops, and the pool starts a fresh container in its place (a used one is never handed to someone else, since it holds its user's files).",
      confirmLabel: 'Release to pool',
      onConfirm: () =>
        release.mutate(
          { poolId: pool.id, workloadId: member.workload_id },
          {
            onSuccess: () => notifySuccess(`${member.container_name} released; pool ${pool.name} refills its place.`),
            onError: (error) => notifyError(error, 'It was not released'),
          },
        ),
    });
  if (pool.members.length === 0) return <Text c="dimmed">No warm containers yet.</Text>;
  const members = [...pool.members].sort((a, b) => a.pool_index - b.pool_index);
  return (
    <Table.ScrollContainer minWidth={700}>
      <Table withTableBorder striped aria-label={`Warm containers of ${pool.name}`}>
        <Table.Thead>
          <Table.Tr>
            <Table.Th scope="col">Index</Table.Th>
            <Table.Th scope="col">Container</Table.Th>
            <Table.Th scope="col">Host port</Table.Th>
            <Table.Th scope="col">State</Table.Th>
            <Table.Th scope="col">Status</Table.Th>
            <Table.Th scope="col">Assigned to</Table.Th>
            <Table.Th scope="col">Actions</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {members.map((member) => (
            <Table.Tr key={member.workload_id} data-state={member.state}>
              <Table.Td>{member.pool_index}</Table.Td>
              <Table.Th scope="row">
                <Anchor component={Link} to={`/workloads/${member.workload_id}`}>
                  <Code>{member.container_name}</Code>
                </Anchor>
              </Table.Th>
              <Table.Td>{member.host_port ?? '—'}</Table.Td>
              <Table.Td>
                {/* Dot: the text keeps the text colour (a light badge's green is under AA). */}
                <Badge variant="dot" color={member.state === 'assigned' ? 'blue' : 'green'}>
                  {member.state}
                </Badge>
              </Table.Td>
              <Table.Td>
                <StatusBadge status={member.status} />
              </Table.Td>
              <Table.Td>{member.state === 'assigned' ? (userNames.get(member.owner_id) ?? member.owner_id) : '—'}</Table.Td>
              <Table.Td>
                {member.state === 'assigned' && (
                  <Button size="xs" variant="default" onClick={() => confirmRelease(member)} aria-label={`Release ${member.container_name}`}>
                    Release
                  </Button>
                )}
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}

function PoolCard({ pool, where, userNames }: { pool: Pool; where: string; userNames: Map<string, string> }) {
  const reinitialise = useReinitialisePool();
  const remove = useDeletePool();
  const failed = pool.members.filter((m) => FAILED.has(m.status)).length;
  const titleId = `pool-${pool.id}`;

  const confirmReinitialise = () =>
    confirmAction({
      title: `Reinitialise pool ${pool.name}?`,
      message: 'Every available warm container stops and a fresh one replaces it; assigned ones stay with their users.',
      confirmLabel: 'Reinitialise',
      onConfirm: () =>
        reinitialise.mutate(pool.id, {
          onSuccess: () => notifySuccess(`Pool ${pool.name} is being reinitialised.`),
          onError: (error) => notifyError(error, 'It was not reinitialised'),
        }),
    });
  const confirmDelete = () =>
    confirmAction({
      title: `Delete pool ${pool.name}?`,
      message: 'Its available warm containers stop; assigned ones stay their users’ workloads.',
      confirmLabel: 'Delete pool',
      onConfirm: () =>
        remove.mutate(pool.id, {
          onSuccess: () => notifySuccess(`Pool ${pool.name} deleted.`),
          onError: (error) => notifyError(error, 'It was not deleted'),
        }),
    });

  return (
    <Paper withBorder p="md" component="section" aria-labelledby={titleId} data-testid="pool" data-pool-name={pool.name}>
      <Stack gap="sm">
        <Group justify="space-between" align="start">
          <div>
            <Title order={2} size="h3" id={titleId}>
              {pool.name}
            </Title>
            <Text size="sm" c="dimmed">
              <Code>{pool.image}</Code> · type {pool.image_type} · {where} · ports {pool.port_min}–{pool.port_max}
              {pool.container_port ? ` → ${pool.container_port}` : ''} · {amount(pool.cpu)} CPU, {amount(pool.ram_gb)} GB RAM
              {pool.gpu ? `, ${amount(pool.gpu)} GPU` : ''} · files at <Code>{pool.files_path}</Code>
            </Text>
          </div>
          <Group gap="xs">
            <Button variant="default" leftSection={<IconRefresh size={16} />} onClick={confirmReinitialise} aria-label={`Reinitialise ${pool.name}`}>
              Reinitialise
            </Button>
            <Button color="red.9" leftSection={<IconTrash size={16} />} onClick={confirmDelete} aria-label={`Delete ${pool.name}`}>
              Delete
            </Button>
          </Group>
        </Group>
        <SimpleGrid cols={{ base: 3, sm: 5 }} component="dl" m={0} data-testid="pool-status">
          <Count label="Target" value={pool.target_size} testId="pool-target" />
          <Count label="Available" value={pool.available} testId="pool-available" />
          <Count label="Warming" value={pool.warming} testId="pool-warming" />
          <Count label="Assigned" value={pool.assigned} testId="pool-assigned" />
          <Count label="Failed" value={failed} testId="pool-failed" />
        </SimpleGrid>
        <ResizeForm key={pool.target_size} pool={pool} />
        <Members pool={pool} userNames={userNames} />
      </Stack>
    </Paper>
  );
}

export function PoolsPage() {
  const me = useMe();
  const pools = usePools();
  const clusters = useClusters();
  const servers = useServers();
  // Admins may list users: an assigned container shows its user's email, else the id.
  const users = useUsers({ enabled: mayOpen(me.data?.role, ADMINS) });
  const [creating, setCreating] = useState(false);

  const clusterNames = new Map((clusters.data?.data ?? []).map((c) => [c.id, c.name]));
  const serverNames = new Map((servers.data?.data ?? []).map((s) => [s.id, s.name]));
  const userNames = new Map((users.data?.data ?? []).map((u) => [u.id, u.email]));
  const whereOf = (pool: Pool) =>
    pool.server_id
      ? `server ${serverNames.get(pool.server_id) ?? pool.server_id}`
      : `cluster ${clusterNames.get(pool.cluster_id ?? '') ?? pool.cluster_id ?? '—'}`;

  return (
    <>
      <PageHeader
        title="Warm pools"
        actions={
          <Button leftSection={<IconPlus size={16} />} onClick={() => setCreating(true)}>
            New pool
          </Button>
        }
      />
      <QueryError error={pools.error} title="Could not load the pools" />
      {!pools.data && !pools.error && <Text c="dimmed">Loading…</Text>}
      {pools.data && pools.data.data.length === 0 && (
        <Text c="dimmed">No pools: a pool keeps containers of an image started, so that a matching launch runs at once.</Text>
      )}
      <Stack gap="md">
        {(pools.data?.data ?? []).map((pool) => (
          <PoolCard key={pool.id} pool={pool} where={whereOf(pool)} userNames={userNames} />
        ))}
      </Stack>
      {creating && <CreatePoolModal onClose={() => setCreating(false)} />}
    </>
  );
}
