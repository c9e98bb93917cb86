/**
 * Registries images are pushed to and pulled from: admins add and delete them, operators
 * see them. The password is write-only: stored encrypted, never shown again.
 */
import { Button, Checkbox, Group, Paper, PasswordInput, SimpleGrid, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useState, type FormEvent } from 'react';
import { problemsByField } from '../../api/problems';
import { useCreateRegistry, useDeleteRegistry, useRegistries } from '../../api/queries/images';
import type { Registry } from '../../api/types';
import { QueryError } from '../../components/QueryError';
import { confirmAction } from '../../components/confirm';
import { notifySuccess } from '../../components/notify';
import { IMAGE_NAME_PATTERN } from './ImageFormModal';

/** domain/image_references.py REGISTRY_URL_PATTERN. */
const REGISTRY_URL_PATTERN = /^(https?:\/\/)?[A-Za-z0-9.-]+(:[0-9]{1,5})?\/?$/;
const FIELDS = new Set(['name', 'url', 'username', 'password', 'insecure']);

function CreateRegistryForm() {
  const create = useCreateRegistry();
  const [name, setName] = useState('');
  const [url, setUrl] = useState('');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [insecure, setInsecure] = useState(false);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const refusal = problemsByField(create.error, (path) => (FIELDS.has(path) ? path : null));

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const found: Record<string, string> = {};
    if (!IMAGE_NAME_PATTERN.test(name.trim())) found.name = "Lower-case letters, digits, '.', '_' or '-' (at most 64)";
    if (!REGISTRY_URL_PATTERN.test(url.trim())) found.url = 'host[:port], or http(s)://host[:port]';
    if (password && !username.trim()) found.username = 'A password needs a username';
    setErrors(found);
    if (Object.keys(found).length > 0) return;
    create.mutate(
      {
        name: name.trim(),
        url: url.trim(),
        username: username.trim() || null,
        password: password || null,
        // Unticked: the API's default (insecure for an http:// address).
        insecure: insecure ? true : null,
      },
      {
        onSuccess: (registry) => {
          notifySuccess(`Registry ${registry.name} added.`);
          setName('');
          setUrl('');
          setUsername('');
          setPassword('');
          setInsecure(false);
        },
        onError: (error) => setErrors(problemsByField(error, (path) => (FIELDS.has(path) ? path : null)).byField),
      },
    );
  };

  return (
    <form onSubmit={submit} noValidate aria-label="Add a registry">
      <Stack gap="sm">
        {create.error && (refusal.unplaced.length > 0 || Object.keys(refusal.byField).length === 0) ? (
          <QueryError error={create.error} title="The registry was not added" />
        ) : null}
        <SimpleGrid cols={{ base: 1, sm: 2, lg: 4 }}>
          <TextInput label="Registry name" required value={name} onChange={(e) => setName(e.currentTarget.value)} error={errors.name} />
          <TextInput
            label="Address"
            placeholder="registry.example:5000"
            required
            value={url}
            onChange={(e) => setUrl(e.currentTarget.value)}
            error={errors.url}
          />
          <TextInput label="Username" value={username} onChange={(e) => setUsername(e.currentTarget.value)} error={errors.username} />
          <PasswordInput
            label="Password"
            description="Stored encrypted; never shown again"
            value={password}
            onChange={(e) => setPassword(e.currentTarget.value)}
            error={errors.password}
            autoComplete="new-password"
          />
        </SimpleGrid>
        <Group justify="space-between">
          <Checkbox
            label="Plain HTTP (a local registry dockerd allows)"
            checked={insecure}
            onChange={(e) => setInsecure(e.currentTarget.checked)}
          />
          <Button type="submit" loading={create.isPending}>
            Add registry
          </Button>
        </Group>
      </Stack>
    </form>
  );
}

export function RegistriesSection({ canManage }: { canManage: boolean }) {
  const registries = useRegistries();
  const remove = useDeleteRegistry();
  const confirmDelete = (registry: Registry) =>
    confirmAction({
      title: `Delete registry ${registry.name}?`,
      message: 'Its stored credentials are deleted too; images already pushed stay in the registry.',
      confirmLabel: 'Delete registry',
      onConfirm: () => remove.mutate(registry.id, { onSuccess: () => notifySuccess(`Registry ${registry.name} deleted.`) }),
    });

  return (
    <Paper withBorder p="md" component="section" aria-labelledby="registries-title">
      <Stack>
        <Title order={2} size="h3" id="registries-title">
          Registries
        </Title>
        {canManage && <CreateRegistryForm />}
        <QueryError error={registries.error} title="Could not load the registries" />
        <QueryError error={remove.error} title="Could not delete the registry" />
        {registries.data && registries.data.data.length === 0 ? (
          <Text c="dimmed">No registry yet.</Text>
        ) : (
          <Table withTableBorder striped data-testid="registries-table">
            <Table.Thead>
              <Table.Tr>
                <Table.Th scope="col">Name</Table.Th>
                <Table.Th scope="col">Address</Table.Th>
                <Table.Th scope="col">Username</Table.Th>
                <Table.Th scope="col">Password</Table.Th>
                <Table.Th scope="col">Plain HTTP</Table.Th>
                {canManage && <Table.Th scope="col">Actions</Table.Th>}
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {(registries.data?.data ?? []).map((registry) => (
                <Table.Tr key={registry.id}>
                  <Table.Th scope="row">{registry.name}</Table.Th>
                  <Table.Td>{registry.url}</Table.Td>
                  <Table.Td>{registry.username ?? '—'}</Table.Td>
                  <Table.Td>{registry.has_password ? 'set' : 'none'}</Table.Td>
                  <Table.Td>{registry.insecure ? 'yes' : 'no'}</Table.Td>
                  {canManage && (
                    <Table.Td>
                      <Button size="xs" variant="outline" color="red" onClick={() => confirmDelete(registry)} aria-label={`Delete registry ${registry.name}`}>
                        Delete
                      </Button>
                    </Table.Td>
                  )}
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </Stack>
    </Paper>
  );
}
