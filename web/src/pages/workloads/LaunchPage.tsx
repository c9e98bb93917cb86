/**
 * Launch a workload: image (typed, or picked from the catalog, which fills in its
 * reference, port and default resources), resources with what is free now beside each,
 * GPU model from what the fleet has, priority, env, ports, duration. Checked here against
 * the API's bounds; the API's refusal is shown on the field it names. Submitted, it says
 * whether the start came from a warm pool and opens the new workload's page, which shows
 * at once why it waits when it cannot run.
 */
import {
  ActionIcon,
  Alert,
  Button,
  Checkbox,
  Group,
  NumberInput,
  Paper,
  Select,
  SimpleGrid,
  Stack,
  TagsInput,
  Text,
  TextInput,
  Title,
} from '@mantine/core';
import { IconPlus, IconRocket, IconTrash } from '@tabler/icons-react';
import { useEffect, useState, type FormEvent } from 'react';
import { useNavigate, useSearchParams } from 'react-router-dom';
import { problemsByField } from '../../api/problems';
import { useClusters, useFleetOverview } from '../../api/queries/fleet';
import { useCatalogImages } from '../../api/queries/images';
import { useMe } from '../../api/queries/session';
import { useCreateWorkload } from '../../api/queries/workloads';
import type { CatalogImage, FleetOverview, FreeNow, WorkloadCreate } from '../../api/types';
import { PageHeader } from '../../components/PageHeader';
import { QueryError } from '../../components/QueryError';
import { notifySuccess } from '../../components/notify';
import {
  DEFAULT_PRIORITY,
  FILES_PATH_PATTERN,
  MAX_ENV_ENTRIES,
  MAX_ENV_VALUE_LENGTH,
  MAX_IMAGE_LENGTH,
  MAX_NAME_LENGTH,
  MAX_RAM_GB,
  MAX_STORAGE_GB,
  NAME_PATTERN,
  highestPriorityFor,
  amount,
  checkCommand,
  checkCpu,
  checkDuration,
  checkEnvName,
  checkGb,
  checkGpu,
  checkGpuMemory,
  isGpuShare,
  shareRuleOf,
  type GpuShareRule,
  checkPorts,
  priorityChoices,
  splitCommand,
} from './limits';

interface EnvRow {
  id: number;
  name: string;
  value: string;
}

interface LaunchForm {
  image: string;
  name: string;
  command: string;
  clusterId: string | null;
  teamId: string | null;
  cpu: number | string;
  ram_gb: number | string;
  storage_gb: number | string;
  gpu: number | string;
  /** GB of GPU memory a share reserves on its device; '' for none. */
  gpuMemory: number | string;
  gpuModel: string | null;
  priority: string;
  preemptible: boolean;
  env: EnvRow[];
  ports: string[];
  duration: number | string;
  /** Where its files directory is mounted; empty: the server's default (/workspace). */
  filesPath: string;
}

const INITIAL: LaunchForm = {
  image: '',
  name: '',
  command: '',
  clusterId: null,
  teamId: null,
  cpu: 1,
  ram_gb: 1,
  storage_gb: 0,
  gpu: 0,
  gpuMemory: '',
  gpuModel: null,
  priority: String(DEFAULT_PRIORITY),
  preemptible: true,
  env: [],
  ports: [],
  duration: '',
  filesPath: '',
};

type Errors = Record<string, string>;

/** The form's own checks (the API's bounds); keys are form fields, `env.<row id>.*`. */
function validate(form: LaunchForm, shares: GpuShareRule): Errors {
  const errors: Errors = {};
  const image = form.image.trim();
  if (!image) errors.image = 'Enter an image, e.g. pytorch/pytorch:2.4';
  else if (image.length > MAX_IMAGE_LENGTH) errors.image = `At most ${MAX_IMAGE_LENGTH} characters`;
  const name = form.name.trim();
  if (name.length > MAX_NAME_LENGTH) errors.name = `At most ${MAX_NAME_LENGTH} characters`;
  else if (name && !NAME_PATTERN.test(name)) errors.name = "Letters, digits, '.', '_' or '-', starting with a letter or digit";
  const checks: [string, string | null][] = [
    ['cpu', checkCpu(form.cpu)],
    ['ram_gb', checkGb(form.ram_gb, MAX_RAM_GB)],
    ['storage_gb', checkGb(form.storage_gb, MAX_STORAGE_GB)],
    ['gpu', checkGpu(form.gpu, shares)],
    ['gpuMemory', checkGpuMemory(form.gpuMemory, form.gpu)],
    ['ports', checkPorts(form.ports)],
    ['command', checkCommand(form.command)],
    ['duration', checkDuration(form.duration)],
  ];
  for (const [field, message] of checks) if (message) errors[field] = message;
  const filesPath = form.filesPath.trim();
  if (filesPath && !FILES_PATH_PATTERN.test(filesPath)) errors.filesPath = 'An absolute path, e.g. /workspace or /usr/share/nginx/html';
  if (form.env.length > MAX_ENV_ENTRIES) errors.env = `At most ${MAX_ENV_ENTRIES} variables`;
  const seen = new Set<string>();
  for (const row of form.env) {
    const message = checkEnvName(row.name) ?? (seen.has(row.name) ? 'Named twice' : null);
    if (message) errors[`env.${row.id}.name`] = message;
    if (row.value.length > MAX_ENV_VALUE_LENGTH) errors[`env.${row.id}.value`] = `At most ${MAX_ENV_VALUE_LENGTH} characters`;
    seen.add(row.name);
  }
  return errors;
}

/**
 * The request. Launched from a catalog image whose reference is unchanged, it names the
 * image (image_id) and leaves out each resource still at the image's value, so the API
 * takes the image's exact figure (a display rounding of RAM would otherwise miss a warm
 * pool of that image).
 */
export function toRequest(form: LaunchForm, image: CatalogImage | null = null): WorkloadCreate {
  const fromCatalog = image !== null && form.image.trim() === image.reference;
  // The generated type marks fields with a default as present; the API takes their
  // absence as "the image's value" for a launch from the catalog.
  const resources: Partial<Pick<WorkloadCreate, 'cpu' | 'ram_gb' | 'storage_gb' | 'gpu'>> = {};
  for (const field of ['cpu', 'ram_gb', 'storage_gb', 'gpu'] as const) {
    const value = Number(form[field]);
    if (!(fromCatalog && value === image[field])) resources[field] = value;
  }
  const filesPath = form.filesPath.trim();
  return {
    ...(fromCatalog ? { image_id: image.id } : {}),
    ...resources,
    image: form.image.trim(),
    name: form.name.trim() || null,
    command: form.command.trim() ? splitCommand(form.command) : null,
    files_path: filesPath || null,
    gpu_model: Number(form.gpu) > 0 ? form.gpuModel : null,
    gpu_memory_gb: form.gpuMemory === '' || !isGpuShare(Number(form.gpu)) ? null : Number(form.gpuMemory),
    priority: Number(form.priority),
    preemptible: form.preemptible,
    cluster_id: form.clusterId,
    team_id: form.teamId,
    replicas: 1,
    gang: false,
    env: Object.fromEntries(form.env.map((row) => [row.name, row.value])),
    ports: form.ports.map(Number),
    duration_s: form.duration === '' ? null : Number(form.duration),
  } as WorkloadCreate;
}

/** An API field path ("cpu", "env.KEY", "ports.1") as this form's field. */
function formFieldOf(form: LaunchForm) {
  return (path: string): string | null => {
    const [head, ...rest] = path.split('.');
    if (head === 'env' && rest.length > 0) {
      const row = form.env.find((r) => r.name === rest.join('.'));
      return row ? `env.${row.id}.name` : 'env';
    }
    const fields: Record<string, string> = {
      image: 'image',
      name: 'name',
      command: 'command',
      cpu: 'cpu',
      ram_gb: 'ram_gb',
      storage_gb: 'storage_gb',
      gpu: 'gpu',
      gpu_model: 'gpuModel',
      gpu_memory_gb: 'gpuMemory',
      priority: 'priority',
      preemptible: 'preemptible',
      cluster_id: 'clusterId',
      team_id: 'teamId',
      env: 'env',
      ports: 'ports',
      duration_s: 'duration',
      files_path: 'filesPath',
    };
    return fields[head] ?? null;
  };
}

/** What could start now for a request of `gpu` GPUs of `model` (any model: the best). */
export function freeNowFor(overview: FleetOverview | undefined, model: string | null, gpu: number): FreeNow | null {
  if (!overview) return null;
  if (!(gpu > 0)) return overview.free_now.find((f) => f.gpu_model === null) ?? null;
  const candidates = overview.free_now.filter((f) => f.gpu_model !== null && (model === null || f.gpu_model === model));
  const score = (f: FreeNow) => (gpu >= 1 ? f.gpu : f.gpu > 0 ? 1 : f.gpu_share);
  return candidates.reduce<FreeNow | null>((best, f) => (best === null || score(f) > score(best) ? f : best), null);
}

function FreeHint({ free, children }: { free: FreeNow | null; children: (free: FreeNow) => string }) {
  if (!free || free.server_id === null) return <>Free now: no server could start it</>;
  return <>Free now: {children(free)}</>;
}

/** The form with `image`'s reference, port and default resources filled in. */
export function withCatalogImage(form: LaunchForm, image: CatalogImage): LaunchForm {
  return {
    ...form,
    image: image.reference,
    ports: image.default_port ? [String(image.default_port)] : [],
    cpu: image.cpu,
    ram_gb: image.ram_gb,
    storage_gb: image.storage_gb,
    gpu: image.gpu,
    gpuModel: image.gpu > 0 ? form.gpuModel : null,
    filesPath: image.files_path ?? '',
  };
}

export function LaunchPage() {
  const me = useMe();
  const clusters = useClusters();
  const catalog = useCatalogImages();
  const [searchParams] = useSearchParams();
  const [catalogId, setCatalogId] = useState<string | null>(null);
  const [form, setForm] = useState<LaunchForm>(INITIAL);
  const [errors, setErrors] = useState<Errors>({});
  const [nextRowId, setNextRowId] = useState(1);
  const overview = useFleetOverview(form.clusterId);
  const create = useCreateWorkload();
  const navigate = useNavigate();

  const set = <K extends keyof LaunchForm>(field: K, value: LaunchForm[K]) => {
    setForm((current) => ({ ...current, [field]: value }));
    setErrors(({ [field as string]: _dropped, ...rest }) => rest);
  };
  const setEnv = (id: number, change: Partial<EnvRow>) => {
    setForm((current) => ({ ...current, env: current.env.map((row) => (row.id === id ? { ...row, ...change } : row)) }));
    setErrors(({ [`env.${id}.name`]: _n, [`env.${id}.value`]: _v, ...rest }) => rest);
  };

  const pickImage = (id: string | null) => {
    setCatalogId(id);
    const image = catalog.data?.data.find((i) => i.id === id);
    if (!image) return;
    setForm((current) => withCatalogImage(current, image));
    setErrors({});
  };

  // Opened from the catalog (/launch?image=<id>): that image, once the catalog is read.
  const asked = searchParams.get('image');
  const [applied, setApplied] = useState(false);
  useEffect(() => {
    if (applied || !asked || !catalog.data) return;
    setApplied(true);
    const image = catalog.data.data.find((i) => i.id === asked);
    if (!image) return;
    setCatalogId(image.id);
    setForm((current) => withCatalogImage(current, image));
  }, [applied, asked, catalog.data]);

  // A team with a lower cap (or the session read later) brings the choice down to it.
  const cap = highestPriorityFor(me.data, form.teamId);
  useEffect(() => {
    if (Number(form.priority) > cap) setForm((current) => ({ ...current, priority: String(cap) }));
  }, [cap, form.priority]);

  const gpu = Number(form.gpu) || 0;
  const free = freeNowFor(overview.data, form.gpuModel, gpu);
  const refusal = problemsByField(create.error, formFieldOf(form));
  const refusalUnplaced = refusal.unplaced.length > 0 || Object.keys(refusal.byField).length === 0;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const found = validate(form, shareRuleOf(overview.data));
    setErrors(found);
    if (Object.keys(found).length > 0) return;
    create.mutate(toRequest(form, catalog.data?.data.find((i) => i.id === catalogId) ?? null), {
      onSuccess: (workload) => {
        notifySuccess(
          workload.from_pool
            ? 'Started at once from a warm pool.'
            : 'A cold start: it is placed and started by the scheduler.',
          `${workload.name} launched`,
        );
        navigate(`/workloads/${workload.id}`);
      },
      onError: (error) => setErrors(problemsByField(error, formFieldOf(form)).byField),
    });
  };

  const models = overview.data?.gpu_models ?? [];
  const teams = me.data?.teams ?? [];
  const fitsNow =
    free !== null &&
    free.server_id !== null &&
    Number(form.cpu) <= free.cpu &&
    Number(form.ram_gb) <= free.ram_gb &&
    Number(form.storage_gb) <= free.storage_gb &&
    (gpu === 0 || (gpu >= 1 ? gpu <= free.gpu : free.gpu > 0 || gpu <= free.gpu_share));

  return (
    <>
      <PageHeader title="Launch a workload" />
      <Paper withBorder p="md" maw={900} component="form" onSubmit={submit} noValidate aria-label="Launch a workload">
        <Stack gap="md">
          {create.error && refusalUnplaced ? (
            <QueryError error={create.error} title="The workload was not launched" />
          ) : null}
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <Select
              label="From the catalog"
              description="Fills in the image, its port, default resources and files path"
              placeholder="Pick an image"
              clearable
              searchable
              data={(catalog.data?.data ?? []).map((i) => ({ value: i.id, label: `${i.name} (${i.reference})` }))}
              value={catalogId}
              onChange={pickImage}
              error={catalog.error ? 'The catalog could not be read' : undefined}
            />
            <TextInput
              label="Image"
              placeholder="pytorch/pytorch:2.4"
              required
              value={form.image}
              onChange={(e) => set('image', e.currentTarget.value)}
              error={errors.image}
              maxLength={MAX_IMAGE_LENGTH}
            />
            <TextInput
              label="Name"
              description="Optional; one is made up from the image"
              value={form.name}
              onChange={(e) => set('name', e.currentTarget.value)}
              error={errors.name}
            />
            <TextInput
              label="Files path"
              description="Where its files directory is mounted (uploads land there); empty: /workspace"
              placeholder="/workspace"
              value={form.filesPath}
              onChange={(e) => set('filesPath', e.currentTarget.value)}
              error={errors.filesPath}
            />
            <Select
              label="Cluster"
              description="Where it may run; free capacity below is for this choice"
              placeholder="Any cluster"
              clearable
              data={(clusters.data?.data ?? []).map((c) => ({ value: c.id, label: `${c.name} (${c.kind})` }))}
              value={form.clusterId}
              onChange={(value) => set('clusterId', value)}
              error={errors.clusterId}
            />
            <Select
              label="Team"
              description="Bills the team's quota; none: your own"
              placeholder="None (personal)"
              clearable
              data={teams.map((t) => ({ value: t.team_id, label: t.team_name }))}
              value={form.teamId}
              onChange={(value) => set('teamId', value)}
              error={errors.teamId}
              disabled={teams.length === 0}
            />
          </SimpleGrid>

          <Title order={2} size="h4">
            Resources
          </Title>
          <QueryError error={overview.error} title="What is free now could not be read" />
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <NumberInput
              label="GPUs"
              description={
                <FreeHint free={free}>
                  {(f) =>
                    gpu > 0
                      ? `${
                          f.gpu > 0 || f.gpu_share === 0
                            ? `${f.gpu} whole GPU${f.gpu === 1 ? '' : 's'} together`
                            : `a share up to ${amount(f.gpu_share)} of a GPU`
                        }${f.gpu_model ? ` (${f.gpu_model})` : ''}`
                      : `${models.reduce((n, m) => n + m.free_devices, 0)} idle GPUs in the fleet`
                  }
                </FreeHint>
              }
              min={0}
              step={1}
              decimalScale={3}
              value={form.gpu}
              onChange={(value) => set('gpu', value)}
              error={errors.gpu}
            />
            <Select
              label="GPU model"
              description="From what the fleet has; any: the scheduler picks"
              placeholder="Any model"
              clearable
              data={models.map((m) => ({
                value: m.model,
                label: `${m.model} (${m.free_devices} of ${m.devices} idle)`,
              }))}
              value={form.gpuModel}
              onChange={(value) => set('gpuModel', value)}
              error={errors.gpuModel}
              disabled={gpu === 0}
            />
            <NumberInput
              label="GPU memory (GB)"
              description="A share's memory on its device; empty: none reserved"
              min={0}
              step={1}
              decimalScale={3}
              value={form.gpuMemory}
              onChange={(value) => set('gpuMemory', value)}
              error={errors.gpuMemory}
              disabled={!isGpuShare(gpu)}
            />
            <NumberInput
              label="CPU cores"
              description={<FreeHint free={free}>{(f) => `${amount(f.cpu)} cores on one server`}</FreeHint>}
              min={0}
              step={0.5}
              decimalScale={1}
              value={form.cpu}
              onChange={(value) => set('cpu', value)}
              error={errors.cpu}
            />
            <NumberInput
              label="RAM (GB)"
              description={<FreeHint free={free}>{(f) => `${amount(f.ram_gb)} GB on that server`}</FreeHint>}
              min={0}
              step={1}
              decimalScale={3}
              value={form.ram_gb}
              onChange={(value) => set('ram_gb', value)}
              error={errors.ram_gb}
            />
            <NumberInput
              label="Storage (GB)"
              description={<FreeHint free={free}>{(f) => `${amount(f.storage_gb)} GB on that server`}</FreeHint>}
              min={0}
              step={10}
              decimalScale={3}
              value={form.storage_gb}
              onChange={(value) => set('storage_gb', value)}
              error={errors.storage_gb}
            />
            <NumberInput
              label="Duration (seconds)"
              description="Simulated servers only: succeeds after this long; empty: runs until stopped"
              min={0}
              value={form.duration}
              onChange={(value) => set('duration', value)}
              error={errors.duration}
            />
          </SimpleGrid>
          {overview.data && !fitsNow && Object.keys(errors).length === 0 && (
            <Alert color="grape" title="More than is free now" data-testid="not-free-now">
              No single server has all of this free now: it will wait in the queue, or preempt
              lower-priority work if it may.
            </Alert>
          )}

          <Title order={2} size="h4">
            Scheduling
          </Title>
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <Select
              label="Priority"
              description={`Higher runs first and may preempt lower; up to ${cap} for you`}
              data={priorityChoices(cap)}
              value={form.priority}
              onChange={(value) => set('priority', value ?? String(DEFAULT_PRIORITY))}
              error={errors.priority}
              allowDeselect={false}
            />
            <Checkbox
              mt="lg"
              label="Preemptible: higher-priority work may evict it"
              checked={form.preemptible}
              onChange={(e) => set('preemptible', e.currentTarget.checked)}
              error={errors.preemptible}
            />
          </SimpleGrid>

          <Title order={2} size="h4">
            Container
          </Title>
          <TextInput
            label="Command"
            description={'Optional: instead of the image\'s own; split on spaces, "quotes" keep them'}
            placeholder={'sh -c "python train.py"'}
            value={form.command}
            onChange={(e) => set('command', e.currentTarget.value)}
            error={errors.command}
          />
          <TagsInput
            label="Ports"
            description="Container ports to publish; type one and press Enter"
            placeholder="8888"
            value={form.ports}
            onChange={(value) => set('ports', value)}
            error={errors.ports}
            splitChars={[',', ' ']}
          />
          <Stack gap="xs" role="group" aria-labelledby="env-label">
            <Group justify="space-between">
              <Text id="env-label" fw={500} size="sm">
                Environment variables
              </Text>
              <Button
                variant="default"
                size="xs"
                leftSection={<IconPlus size={14} />}
                onClick={() => {
                  setForm((current) => ({ ...current, env: [...current.env, { id: nextRowId, name: '', value: '' }] }));
                  setNextRowId((id) => id + 1);
                }}
              >
                Add variable
              </Button>
            </Group>
            {errors.env && (
              <Text c="red" size="sm" role="alert">
                {errors.env}
              </Text>
            )}
            {form.env.length === 0 && (
              <Text size="sm" c="dimmed">
                None.
              </Text>
            )}
            {form.env.map((row, index) => (
              <Group key={row.id} align="flex-start" wrap="nowrap">
                <TextInput
                  label={`Name of variable ${index + 1}`}
                  placeholder="NAME"
                  value={row.name}
                  onChange={(e) => setEnv(row.id, { name: e.currentTarget.value })}
                  error={errors[`env.${row.id}.name`]}
                  style={{ flex: 1 }}
                />
                <TextInput
                  label={`Value of variable ${index + 1}`}
                  value={row.value}
                  onChange={(e) => setEnv(row.id, { value: e.currentTarget.value })}
                  error={errors[`env.${row.id}.value`]}
                  style={{ flex: 2 }}
                />
                <ActionIcon
                  variant="subtle"
                  color="red"
                  mt={28}
                  aria-label={`Remove variable ${index + 1}`}
                  onClick={() => setForm((current) => ({ ...current, env: current.env.filter((r) => r.id !== row.id) }))}
                >
                  <IconTrash size={16} />
                </ActionIcon>
              </Group>
            ))}
          </Stack>

          <Group justify="flex-end">
            <Button type="submit" leftSection={<IconRocket size={16} />} loading={create.isPending}>
              Launch
            </Button>
          </Group>
        </Stack>
      </Paper>
    </>
  );
}
