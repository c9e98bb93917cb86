import { Badge, Stack, Table, Text } from '@mantine/core';
import { useFairShare } from '../../api/queries/fleet';
import type { FairShareTeam } from '../../api/types';
import { PageHeader } from '../../components/PageHeader';
import { QueryError } from '../../components/QueryError';
import { formatAmount } from '../../components/UsageBar';

/** The resources a team's figures are shown in (the quota's; storage has no limit). */
const RESOURCES = [
  { key: 'cpu', label: 'CPU', unit: 'cores' },
  { key: 'ram_gb', label: 'RAM', unit: 'GB' },
  { key: 'gpu', label: 'GPU', unit: 'GPUs' },
] as const;

type ResourceKey = (typeof RESOURCES)[number]['key'];
type Amounts = Record<ResourceKey, number | null>;

/** One figure per resource, each on its own line and tagged for tests (`data-resource`);
 * `unset` is what a null amount means (an unlimited limit). */
function Figures({ amounts, unset = '—' }: { amounts: Amounts; unset?: string }) {
  return (
    <Stack gap={0}>
      {RESOURCES.map((resource) => {
        const value = amounts[resource.key];
        return (
          <Text key={resource.key} size="sm" data-resource={resource.key} style={{ whiteSpace: 'nowrap' }}>
            {resource.label} {value === null ? unset : `${formatAmount(value)} ${resource.unit}`}
          </Text>
        );
      })}
    </Stack>
  );
}

/** The DRF share as a percentage of the fleet (already divided by the weight). */
function formatShare(share: number): string {
  return `${formatAmount(Math.round(share * 1000) / 10)}%`;
}

/** Hours of use, small ones kept readable (a few GPU-seconds are 0.000833 GPU-hours). */
function formatHours(value: number): string {
  return value === 0 || value >= 100 ? formatAmount(value) : String(Number(value.toPrecision(3)));
}

/** Time-based fair share: the decayed past usage in core-, GB- and GPU-hours and Slurm's
 * factor 2^(-U/S) the queue divides the team's place by among equal priorities. */
function PastUsage({ team }: { team: FairShareTeam }) {
  const units: Record<ResourceKey, string> = { cpu: 'core-h', ram_gb: 'GB-h', gpu: 'GPU-h' };
  return (
    <Stack gap={0}>
      {RESOURCES.map((resource) => (
        <Text key={resource.key} size="sm" data-resource={resource.key} style={{ whiteSpace: 'nowrap' }}>
          {resource.label} {formatHours(team.decayed_usage[resource.key])} {units[resource.key]}
        </Text>
      ))}
      <Text size="sm" fw={500} data-testid="fairshare-factor">
        factor {team.fairshare_factor.toFixed(3)}
      </Text>
    </Stack>
  );
}

/** A half-life in the largest whole unit that fits. */
function formatHalfLife(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/** The team's over-quota weight, then each resource and GPU model it weighs apart from it
 * (tagged for tests: `data-weight`). */
function Weights({ team }: { team: FairShareTeam }) {
  const labels = { cpu: 'CPU', ram_gb: 'RAM', storage_gb: 'Storage', gpu: 'GPU' } as const;
  const apart = (Object.keys(labels) as (keyof typeof labels)[]).filter((key) => team.weights[key] !== team.weight);
  return (
    <Stack gap={0}>
      <Text size="sm" data-weight="all">
        {formatAmount(team.weight)}
      </Text>
      {apart.map((key) => (
        <Text key={key} size="xs" c="dimmed" data-weight={key} style={{ whiteSpace: 'nowrap' }}>
          {labels[key]} {formatAmount(team.weights[key])}
        </Text>
      ))}
      {team.gpu_models
        .filter((model) => model.weight !== null && model.weight !== undefined)
        .map((model) => (
          <Text key={model.model} size="xs" c="dimmed" data-weight={model.model} style={{ whiteSpace: 'nowrap' }}>
            {model.model} {formatAmount(model.weight ?? 0)}
          </Text>
        ))}
    </Stack>
  );
}

function hasAny(amounts: Amounts): boolean {
  return RESOURCES.some((resource) => (amounts[resource.key] ?? 0) > 0);
}

function TeamRow({
  team,
  parentName,
  decay,
}: {
  team: FairShareTeam;
  parentName: string | null;
  decay: boolean;
}) {
  const borrowing = hasAny(team.borrowed);
  return (
    <Table.Tr data-team={team.name} data-parent={parentName ?? ''}>
      <Table.Th scope="row" style={{ paddingLeft: parentName ? 32 : undefined, minWidth: 190 }}>
        <Text fw={parentName ? 500 : 700} size="sm">
          {team.name}
        </Text>
        {parentName && (
          <Text size="xs" c="dimmed">
            in {parentName}
          </Text>
        )}
        {team.under_guarantee && (
          <Badge size="sm" variant="dot" color="teal" mt={4}>
            under guarantee
          </Badge>
        )}
      </Table.Th>
      <Table.Td>
        <Weights team={team} />
      </Table.Td>
      <Table.Td>
        <Figures amounts={team.guarantee} />
        {team.gpu_models
          .filter((model) => model.guarantee > 0)
          .map((model) => (
            <Text key={model.model} size="xs" c="dimmed" data-gpu-model={model.model} maw={160}>
              of which {model.model}: {formatAmount(model.guarantee)} GPUs (holds {formatAmount(model.used)})
            </Text>
          ))}
      </Table.Td>
      <Table.Td>
        <Figures amounts={team.limit} unset="no limit" />
        {team.gpu_models
          .filter((model) => model.limit !== null)
          .map((model) => (
            <Text key={model.model} size="xs" c="dimmed" data-gpu-model-limit={model.model} maw={160}>
              {model.model}: at most {formatAmount(model.limit ?? 0)} GPUs (holds {formatAmount(model.used)})
            </Text>
          ))}
      </Table.Td>
      <Table.Td>
        <Figures amounts={team.used} />
      </Table.Td>
      <Table.Td data-borrowing={borrowing ? 'yes' : 'no'}>
        <Figures amounts={team.borrowed} />
      </Table.Td>
      <Table.Td>
        <Figures amounts={team.fair_share} />
        {team.gpu_models
          .filter((model) => model.fair_share !== null && model.fair_share !== undefined)
          .map((model) => (
            <Text key={model.model} size="xs" c="dimmed" data-gpu-model-share={model.model} maw={160}>
              {model.model}: {formatAmount(model.fair_share ?? 0)} GPUs (holds {formatAmount(model.used)})
            </Text>
          ))}
      </Table.Td>
      <Table.Td data-column="dominant-share">{formatShare(team.dominant_share)}</Table.Td>
      <Table.Td>
        <Figures amounts={team.pending} />
      </Table.Td>
      {decay && (
        <Table.Td>
          <PastUsage team={team} />
        </Table.Td>
      )}
    </Table.Tr>
  );
}

/** Fair share (issue 21): the quota tree, departments each followed by their teams, with
 * what each is guaranteed, may hold, holds, borrows and would hold if the fleet were
 * divided now. Kept current by the live stream (api/live.ts). */
export function FairSharePage() {
  const fairshare = useFairShare();
  const data = fairshare.data;
  const names = new Map((data?.data ?? []).map((team) => [team.team_id, team.name]));
  const capacity = data?.capacity;
  const halfLife = data?.half_life_s ?? null;
  return (
    <>
      <PageHeader title="Fair share" />
      <QueryError error={fairshare.error} title="Could not load the fair-share view" />
      {capacity && (
        <Text size="sm" c="dimmed" mb="xs" data-testid="fairshare-capacity">
          Shares are out of the online fleet: {formatAmount(capacity.cpu)} cores, {formatAmount(capacity.ram_gb)} GB RAM,{' '}
          {formatAmount(capacity.gpu)} GPUs. Borrowed is what a team uses above its guarantee, on capacity that other
          teams leave idle; a team back under its guarantee reclaims it.
        </Text>
      )}
      {halfLife !== null && (
        <Text size="sm" c="dimmed" mb="xs" data-testid="fairshare-decay">
          Time-based fair share is on: past usage counts too, halving every {formatHalfLife(halfLife)}. Among equal
          priorities a team's place is divided by its factor, 2^(−past usage ÷ its share), so a team that used much
          lately waits behind one that did not.
        </Text>
      )}
      {fairshare.isPending && <Text>Loading…</Text>}
      {data && data.count === 0 && (
        <Text data-testid="fairshare-empty">
          No teams to show. Teams appear here once they exist; you see the teams you belong to and their departments.
        </Text>
      )}
      {data && data.count > 0 && (
        // A keyboard user can scroll it too (focusable, named): wider than a laptop screen
        // once the past-usage column is there.
        <div role="region" aria-label="Fair share table, scrolls sideways" tabIndex={0} style={{ overflowX: 'auto' }}>
          <Table withTableBorder striped miw={1000} aria-label="Fair share by team" data-testid="fairshare-table">
            <Table.Thead>
              <Table.Tr>
                <Table.Th scope="col">Team</Table.Th>
                <Table.Th scope="col">Weight</Table.Th>
                <Table.Th scope="col">Guarantee</Table.Th>
                <Table.Th scope="col">Limit</Table.Th>
                <Table.Th scope="col">Used</Table.Th>
                <Table.Th scope="col">Borrowed</Table.Th>
                <Table.Th scope="col">Fair share</Table.Th>
                <Table.Th scope="col">Dominant share</Table.Th>
                <Table.Th scope="col">Pending</Table.Th>
                {halfLife !== null && <Table.Th scope="col">Past usage</Table.Th>}
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {data.data.map((team) => (
                <TeamRow
                  key={team.team_id}
                  team={team}
                  parentName={team.parent_id ? (names.get(team.parent_id) ?? null) : null}
                  decay={halfLife !== null}
                />
              ))}
            </Table.Tbody>
          </Table>
        </div>
      )}
    </>
  );
}
