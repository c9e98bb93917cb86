import { Alert, Button, Code, CopyButton, Group, Select, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useState, type FormEvent } from 'react';
import { useCreateInvite, useInvites, useRevokeInvite, useTeams, type InviteStatus } from '../../api/queries/admin';
import type { Invite, Role } from '../../api/types';
import { PageHeader } from '../../components/PageHeader';
import { QueryError } from '../../components/QueryError';
import { READABLE_ALERT } from '../../components/a11y';
import { confirmAction } from '../../components/confirm';

function CreateInvite() {
  const create = useCreateInvite();
  const teams = useTeams();
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<string | null>('user');
  const [team, setTeam] = useState<string | null>(null);
  const [created, setCreated] = useState<Invite | null>(null);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate(
      { email, role: (role ?? 'user') as Role, team_id: team },
      {
        onSuccess: (invite) => {
          setCreated(invite);
          setEmail('');
        },
      },
    );
  };

  return (
    <section aria-labelledby="new-invite-heading">
      <Title order={2} size="h4" id="new-invite-heading" mb="xs">
        New invite
      </Title>
      <form onSubmit={submit}>
        <Group align="end">
          <TextInput label="Email" type="email" required maxLength={320} value={email} onChange={(e) => setEmail(e.currentTarget.value)} />
          <Select label="Role" data={['user', 'operator', 'admin']} value={role} onChange={setRole} allowDeselect={false} w={130} />
          <Select
            label="Team (optional)"
            clearable
            placeholder="No team"
            data={(teams.data?.data ?? []).map((t) => ({ value: t.id, label: t.name }))}
            value={team}
            onChange={setTeam}
          />
          <Button type="submit" loading={create.isPending}>
            Create invite
          </Button>
        </Group>
      </form>
      <QueryError error={create.error} title="Could not create the invite" />
      {created && (
        <Alert color="green" styles={READABLE_ALERT} mt="sm" title={`Invite for ${created.email}`} withCloseButton onClose={() => setCreated(null)} closeButtonLabel="Dismiss">
          <Stack gap={6}>
            <Text size="sm">Give this code to the new user; it is shown only now. It expires {new Date(created.expires_at).toLocaleString()}.</Text>
            <Group gap="sm">
              <Code data-testid="invite-code" fz="md">
                {created.code}
              </Code>
              <CopyButton value={created.code}>
                {({ copied, copy }) => (
                  <Button size="xs" variant="default" onClick={copy}>
                    {copied ? 'Copied' : 'Copy code'}
                  </Button>
                )}
              </CopyButton>
            </Group>
          </Stack>
        </Alert>
      )}
    </section>
  );
}

export function InvitesPage() {
  const [status, setStatus] = useState<string | null>(null);
  const invites = useInvites(status as InviteStatus | null);
  const revoke = useRevokeInvite();
  const teams = useTeams();
  const teamNames = new Map((teams.data?.data ?? []).map((t) => [t.id, t.name]));

  return (
    <>
      <PageHeader title="Invites" />
      <Stack gap="lg">
        <CreateInvite />
        <section aria-labelledby="invites-heading">
          <Group justify="space-between" align="end" mb="xs">
            <Title order={2} size="h4" id="invites-heading">
              Invites
            </Title>
            <Select
              label="Show"
              placeholder="All"
              clearable
              data={['pending', 'used', 'expired']}
              value={status}
              onChange={setStatus}
              w={150}
            />
          </Group>
          <QueryError error={invites.error} title="Could not load the invites" />
          <QueryError error={revoke.error} title="Could not revoke the invite" />
          <Table withTableBorder striped data-testid="invites-table">
            <Table.Thead>
              <Table.Tr>
                <Table.Th scope="col">Email</Table.Th>
                <Table.Th scope="col">Role</Table.Th>
                <Table.Th scope="col">Team</Table.Th>
                <Table.Th scope="col">Status</Table.Th>
                <Table.Th scope="col">Created</Table.Th>
                <Table.Th scope="col">Expires</Table.Th>
                <Table.Th scope="col">Actions</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {(invites.data?.data ?? []).length === 0 && (
                <Table.Tr>
                  <Table.Td colSpan={7}>{invites.isPending ? 'Loading…' : 'No invites.'}</Table.Td>
                </Table.Tr>
              )}
              {(invites.data?.data ?? []).map((invite) => (
                <Table.Tr key={invite.id} data-status={invite.status}>
                  <Table.Td>{invite.email}</Table.Td>
                  <Table.Td>{invite.role}</Table.Td>
                  <Table.Td>{invite.team_id ? (teamNames.get(invite.team_id) ?? invite.team_id) : '—'}</Table.Td>
                  <Table.Td>{invite.status}</Table.Td>
                  <Table.Td>{new Date(invite.created_at).toLocaleString()}</Table.Td>
                  <Table.Td>{new Date(invite.expires_at).toLocaleString()}</Table.Td>
                  <Table.Td>
                    {invite.status === 'pending' && (
                      <Button
                        size="xs"
                        color="red"
                        variant="outline"
                        aria-label={`Revoke invite for ${invite.email}`}
                        onClick={() =>
                          confirmAction({
                            title: `Revoke the invite for ${invite.email}?`,
                            message: 'The code stops working at once.',
                            confirmLabel: 'Revoke',
                            onConfirm: () => revoke.mutate(invite.id),
                          })
                        }
                      >
                        Revoke
                      </Button>
                    )}
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </section>
      </Stack>
    </>
  );
}
