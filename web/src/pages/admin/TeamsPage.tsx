import { Button, Card, Checkbox, Group, Modal, NumberInput, Select, SimpleGrid, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useState, type FormEvent } from 'react';
import {
  useAddTeamMember,
  useCreateTeam,
  useRemoveTeamMember,
  useTeams,
  useUpdateTeam,
  useUsers,
} from '../../api/queries/admin';
import type { QuotaBody, Team } from '../../api/types';
import { TeamCullingSection } from './TeamCullingSection';
import { PageHeader } from '../../components/PageHeader';
import { QueryError } from '../../components/QueryError';
import { MODAL_CLOSE } from '../../components/a11y';

type QuotaFields = { cpu: number | string; ram_gb: number | string; gpu: number | string };

/** Empty field: no limit (null). */
function toQuota(fields: QuotaFields): QuotaBody {
  const value = (field: number | string) => (field === '' ? null : Number(field));
  return { cpu: value(fields.cpu), ram_gb: value(fields.ram_gb), gpu: value(fields.gpu) };
}

function QuotaInputs({ value, onChange }: { value: QuotaFields; onChange: (value: QuotaFields) => void }) {
  return (
    <Group grow>
      <NumberInput label="CPU quota (cores)" placeholder="no limit" min={0} value={value.cpu} onChange={(cpu) => onChange({ ...value, cpu })} />
      <NumberInput label="RAM quota (GB)" placeholder="no limit" min={0} value={value.ram_gb} onChange={(ram_gb) => onChange({ ...value, ram_gb })} />
      <NumberInput label="GPU quota (devices)" placeholder="no limit" min={0} value={value.gpu} onChange={(gpu) => onChange({ ...value, gpu })} />
    </Group>
  );
}

const quotaText = (value: number | null | undefined) => (value === null || value === undefined ? 'no limit' : String(value));

function CreateTeam() {
  const create = useCreateTeam();
  const [name, setName] = useState('');
  const [membersCanRead, setMembersCanRead] = useState(false);
  const [quota, setQuota] = useState<QuotaFields>({ cpu: '', ram_gb: '', gpu: '' });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate(
      { name, quota: toQuota(quota), members_can_read: membersCanRead },
      { onSuccess: () => setName('') },
    );
  };
  return (
    <Card withBorder component="section" aria-labelledby="new-team-heading">
      <Title order={2} size="h4" id="new-team-heading" mb="xs">
        New team
      </Title>
      <form onSubmit={submit}>
        <Stack>
          <TextInput label="Team name" required maxLength={64} value={name} onChange={(e) => setName(e.currentTarget.value)} />
          <QuotaInputs value={quota} onChange={setQuota} />
          <Checkbox
            label="Members can read each other's workloads"
            checked={membersCanRead}
            onChange={(e) => setMembersCanRead(e.currentTarget.checked)}
          />
          <QueryError error={create.error} title="Could not create the team" />
          <Group>
            <Button type="submit" loading={create.isPending}>
              Create team
            </Button>
          </Group>
        </Stack>
      </form>
    </Card>
  );
}

function EditTeamModal({ team, onClose }: { team: Team; onClose: () => void }) {
  const update = useUpdateTeam();
  const addMember = useAddTeamMember();
  const removeMember = useRemoveTeamMember();
  const users = useUsers();
  const [quota, setQuota] = useState<QuotaFields>({
    cpu: team.quota.cpu ?? '',
    ram_gb: team.quota.ram_gb ?? '',
    gpu: team.quota.gpu ?? '',
  });
  const [membersCanRead, setMembersCanRead] = useState(team.members_can_read);
  const [newMember, setNewMember] = useState<string | null>(null);
  const [newMemberAdmin, setNewMemberAdmin] = useState(false);
  const memberIds = new Set(team.members.map((m) => m.user_id));

  const save = (event: FormEvent) => {
    event.preventDefault();
    update.mutate({ id: team.id, quota: toQuota(quota), members_can_read: membersCanRead });
  };
  const add = (event: FormEvent) => {
    event.preventDefault();
    if (!newMember) return;
    addMember.mutate(
      { teamId: team.id, userId: newMember, isTeamAdmin: newMemberAdmin },
      { onSuccess: () => setNewMember(null) },
    );
  };

  return (
    <Modal opened onClose={onClose} title={`Team ${team.name}`} size="lg" closeButtonProps={MODAL_CLOSE}>
      <Stack>
        <form onSubmit={save} aria-label="Quotas">
          <Stack>
            <QuotaInputs value={quota} onChange={setQuota} />
            <Checkbox
              label="Members can read each other's workloads"
              checked={membersCanRead}
              onChange={(e) => setMembersCanRead(e.currentTarget.checked)}
            />
            <QueryError error={update.error} title="Could not save the team" />
            <Group>
              <Button type="submit" loading={update.isPending}>
                Save quotas
              </Button>
              {update.isSuccess && <Text size="sm">Saved.</Text>}
            </Group>
          </Stack>
        </form>
        <TeamCullingSection teamId={team.id} />
        <Title order={3} size="h5">
          Members
        </Title>
        <Table withTableBorder>
          <Table.Thead>
            <Table.Tr>
              <Table.Th scope="col">Email</Table.Th>
              <Table.Th scope="col">Team admin</Table.Th>
              <Table.Th scope="col">Actions</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {team.members.length === 0 && (
              <Table.Tr>
                <Table.Td colSpan={3}>No members yet.</Table.Td>
              </Table.Tr>
            )}
            {team.members.map((member) => (
              <Table.Tr key={member.user_id}>
                <Table.Td>{member.email}</Table.Td>
                <Table.Td>{member.is_team_admin ? 'yes' : 'no'}</Table.Td>
                <Table.Td>
                  <Button
                    size="xs"
                    color="red"
                    variant="outline"
                    aria-label={`Remove ${member.email} from ${team.name}`}
                    loading={removeMember.isPending && removeMember.variables?.userId === member.user_id}
                    onClick={() => removeMember.mutate({ teamId: team.id, userId: member.user_id })}
                  >
                    Remove
                  </Button>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
        <QueryError error={removeMember.error} title="Could not remove the member" />
        <form onSubmit={add} aria-label="Add a member">
          <Group align="end">
            <Select
              label="Add member"
              placeholder="Choose a user"
              searchable
              data={(users.data?.data ?? [])
                .filter((u) => !memberIds.has(u.id))
                .map((u) => ({ value: u.id, label: u.email }))}
              value={newMember}
              onChange={setNewMember}
              style={{ flex: 1 }}
            />
            <Checkbox label="Team admin" checked={newMemberAdmin} onChange={(e) => setNewMemberAdmin(e.currentTarget.checked)} mb={8} />
            <Button type="submit" loading={addMember.isPending} disabled={!newMember}>
              Add
            </Button>
          </Group>
        </form>
        <QueryError error={addMember.error} title="Could not add the member" />
      </Stack>
    </Modal>
  );
}

export function TeamsPage() {
  const teams = useTeams();
  const [editingId, setEditingId] = useState<string | null>(null);
  // The modal shows the team as the list has it now, so member changes appear at once.
  const editing = teams.data?.data.find((t) => t.id === editingId) ?? null;

  return (
    <>
      <PageHeader title="Teams" />
      <SimpleGrid cols={{ base: 1, lg: 3 }}>
        <div style={{ gridColumn: 'span 2' }}>
          <QueryError error={teams.error} title="Could not load the teams" />
          <Table withTableBorder striped data-testid="teams-table">
            <Table.Thead>
              <Table.Tr>
                <Table.Th scope="col">Team</Table.Th>
                <Table.Th scope="col">Members</Table.Th>
                <Table.Th scope="col">CPU quota</Table.Th>
                <Table.Th scope="col">RAM quota (GB)</Table.Th>
                <Table.Th scope="col">GPU quota</Table.Th>
                <Table.Th scope="col">Actions</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {(teams.data?.data ?? []).length === 0 && (
                <Table.Tr>
                  <Table.Td colSpan={6}>{teams.isPending ? 'Loading…' : 'No teams yet.'}</Table.Td>
                </Table.Tr>
              )}
              {(teams.data?.data ?? []).map((team) => (
                <Table.Tr key={team.id}>
                  <Table.Th scope="row">{team.name}</Table.Th>
                  <Table.Td>{team.members.length}</Table.Td>
                  <Table.Td>{quotaText(team.quota.cpu)}</Table.Td>
                  <Table.Td>{quotaText(team.quota.ram_gb)}</Table.Td>
                  <Table.Td>{quotaText(team.quota.gpu)}</Table.Td>
                  <Table.Td>
                    <Button size="xs" variant="default" aria-label={`Edit ${team.name}`} onClick={() => setEditingId(team.id)}>
                      Edit
                    </Button>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </div>
        <CreateTeam />
      </SimpleGrid>
      {editing && <EditTeamModal key={editing.id} team={editing} onClose={() => setEditingId(null)} />}
    </>
  );
}

