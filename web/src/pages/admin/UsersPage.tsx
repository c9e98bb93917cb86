import { Button, Group, Select, Text } from '@mantine/core';
import { useMemo } from 'react';
import { useDeleteUser, useUpdateUser, useUsers } from '../../api/queries/admin';
import { useMe } from '../../api/queries/session';
import type { Role, UserAccount } from '../../api/types';
import { PageHeader } from '../../components/PageHeader';
import { QueryError } from '../../components/QueryError';
import { VirtualTable, type Column } from '../../components/VirtualTable';
import { confirmAction } from '../../components/confirm';
import { notifyError } from '../../components/notify';

const ROLES: Role[] = ['user', 'operator', 'admin'];

function failed(title: string) {
  return (error: unknown) => notifyError(error, title);
}

export function UsersPage() {
  const me = useMe();
  const users = useUsers();
  const update = useUpdateUser();
  const remove = useDeleteUser();

  const columns = useMemo<Column<UserAccount>[]>(
    () => [
      { key: 'email', header: 'Email', cell: (u) => u.email },
      { key: 'username', header: 'Username', cell: (u) => u.username ?? '—' },
      {
        key: 'role',
        header: 'Role',
        width: 150,
        cell: (u) => (
          <Select
            aria-label={`Role of ${u.email}`}
            size="xs"
            data={ROLES}
            value={u.role}
            allowDeselect={false}
            disabled={u.id === me.data?.id}
            onChange={(role) =>
              role && role !== u.role && update.mutate({ id: u.id, role: role as Role }, { onError: failed(`Could not change ${u.email}`) })
            }
          />
        ),
      },
      { key: 'active', header: 'Account', width: 100, cell: (u) => (u.is_active ? 'active' : 'disabled') },
      {
        key: 'login',
        header: 'Last login',
        cell: (u) => (u.last_login_at ? <time dateTime={u.last_login_at}>{new Date(u.last_login_at).toLocaleString()}</time> : 'never'),
      },
      {
        key: 'actions',
        header: 'Actions',
        width: 200,
        cell: (u) =>
          u.id === me.data?.id ? (
            <Text size="xs">(you)</Text>
          ) : (
            <Group gap="xs" wrap="nowrap">
              <Button
                size="xs"
                variant="default"
                aria-label={`${u.is_active ? 'Disable' : 'Enable'} ${u.email}`}
                onClick={() => update.mutate({ id: u.id, is_active: !u.is_active }, { onError: failed(`Could not change ${u.email}`) })}
              >
                {u.is_active ? 'Disable' : 'Enable'}
              </Button>
              <Button
                size="xs"
                color="red"
                variant="outline"
                aria-label={`Delete ${u.email}`}
                onClick={() =>
                  confirmAction({
                    title: `Delete user ${u.email}?`,
                    message: 'The account goes; this cannot be undone.',
                    confirmLabel: 'Delete user',
                    onConfirm: () => remove.mutate(u.id, { onError: failed(`Could not delete ${u.email}`) }),
                  })
                }
              >
                Delete
              </Button>
            </Group>
          ),
      },
    ],
    [me.data?.id, update, remove],
  );

  return (
    <>
      <PageHeader title="Users" />
      <QueryError error={users.error} title="Could not load the users" />
      {users.data && (
        <Text size="sm" c="dimmed" mb="xs">
          {users.data.count} user{users.data.count === 1 ? '' : 's'}
        </Text>
      )}
      <VirtualTable
        label="Users"
        testId="users-table"
        rows={users.data?.data ?? []}
        columns={columns}
        rowKey={(u) => u.id}
        rowHeight={52}
        empty={users.isPending ? 'Loading…' : 'No users.'}
      />
    </>
  );
}
