import { Button, Group, Modal, Select, Stack, Table, TextInput } from '@mantine/core';
import { useState, type FormEvent } from 'react';
import { useClusters, useCreateCluster, useDeleteCluster, useRenameCluster } from '../../api/queries/fleet';
import type { Cluster, ClusterKind } from '../../api/types';
import { PageHeader } from '../../components/PageHeader';
import { QueryError } from '../../components/QueryError';
import { MODAL_CLOSE } from '../../components/a11y';
import { confirmAction } from '../../components/confirm';
import { notifySuccess } from '../../components/notify';

function CreateClusterForm() {
  const create = useCreateCluster();
  const [name, setName] = useState('');
  const [kind, setKind] = useState<string | null>('simulated');
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate(
      { name, kind: (kind ?? 'simulated') as ClusterKind },
      {
        onSuccess: (cluster) => {
          setName('');
          notifySuccess(`Cluster ${cluster.name} created.`);
        },
      },
    );
  };
  return (
    <form onSubmit={submit} aria-label="Create a cluster">
      <Group align="end" mb="md">
        <TextInput label="New cluster name" required maxLength={64} value={name} onChange={(e) => setName(e.currentTarget.value)} />
        <Select label="Kind" data={['simulated', 'docker']} value={kind} onChange={setKind} allowDeselect={false} />
        <Button type="submit" loading={create.isPending}>
          Create cluster
        </Button>
      </Group>
      <QueryError error={create.error} title="Could not create the cluster" />
    </form>
  );
}

function RenameModal({ cluster, onClose }: { cluster: Cluster | null; onClose: () => void }) {
  const rename = useRenameCluster();
  const [name, setName] = useState('');
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!cluster) return;
    rename.mutate({ id: cluster.id, name }, { onSuccess: onClose });
  };
  return (
    <Modal opened={cluster !== null} onClose={onClose} title={`Rename cluster ${cluster?.name ?? ''}`} closeButtonProps={MODAL_CLOSE}>
      <form onSubmit={submit}>
        <Stack>
          <TextInput
            label="New name"
            required
            maxLength={64}
            value={name}
            onChange={(e) => setName(e.currentTarget.value)}
            data-autofocus
          />
          <QueryError error={rename.error} title="Could not rename the cluster" />
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={rename.isPending}>
              Rename
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}

export function ClustersPage() {
  const clusters = useClusters();
  const remove = useDeleteCluster();
  const [renaming, setRenaming] = useState<Cluster | null>(null);

  const confirmDelete = (cluster: Cluster) =>
    confirmAction({
      title: `Delete cluster ${cluster.name}?`,
      message: 'A cluster can be deleted only when it has no servers and no workloads.',
      confirmLabel: 'Delete cluster',
      onConfirm: () => remove.mutate(cluster.id, { onSuccess: () => notifySuccess(`Cluster ${cluster.name} deleted.`) }),
    });

  return (
    <>
      <PageHeader title="Clusters" />
      <CreateClusterForm />
      <QueryError error={remove.error} title="Could not delete the cluster" />
      <QueryError error={clusters.error} title="Could not load the clusters" />
      <Table withTableBorder striped data-testid="clusters-table">
        <Table.Thead>
          <Table.Tr>
            <Table.Th scope="col">Name</Table.Th>
            <Table.Th scope="col">Kind</Table.Th>
            <Table.Th scope="col">Created</Table.Th>
            <Table.Th scope="col">Actions</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {(clusters.data?.data ?? []).map((cluster) => (
            <Table.Tr key={cluster.id}>
              <Table.Th scope="row">{cluster.name}</Table.Th>
              <Table.Td>{cluster.kind}</Table.Td>
              <Table.Td>{new Date(cluster.created_at).toLocaleString()}</Table.Td>
              <Table.Td>
                <Group gap="xs">
                  <Button size="xs" variant="default" onClick={() => setRenaming(cluster)} aria-label={`Rename ${cluster.name}`}>
                    Rename
                  </Button>
                  <Button
                    size="xs"
                    variant="outline"
                    color="red"
                    onClick={() => confirmDelete(cluster)}
                    aria-label={`Delete ${cluster.name}`}
                  >
                    Delete
                  </Button>
                </Group>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <RenameModal key={renaming?.id ?? 'none'} cluster={renaming} onClose={() => setRenaming(null)} />
    </>
  );
}
