/**
 * Define a warm pool: an image (picked from the catalog, or typed), where (one server or
 * anywhere in a cluster), how many warm containers, their host port range, container
 * port and resources. Checked here against the API's bounds; the API's refusal is shown
 * on the field it names.
 */
import { Button, Group, Modal, NumberInput, SegmentedControl, Select, SimpleGrid, Stack, Text, TextInput } from '@mantine/core';
import { useState, type FormEvent } from 'react';
import { problemsByField } from '../../api/problems';
import { useClusters, useServers } from '../../api/queries/fleet';
import { useCatalogImages } from '../../api/queries/images';
import { useCreatePool } from '../../api/queries/pools';
import type { PoolCreate } from '../../api/types';
import { QueryError } from '../../components/QueryError';
import { MODAL_CLOSE } from '../../components/a11y';
import { notifySuccess } from '../../components/notify';
import { IMAGE_TYPE_PATTERN } from '../images/ImageFormModal';
import { DEFAULT_FILES_PATH, FILES_PATH_PATTERN, MAX_IMAGE_LENGTH, MAX_RAM_GB, MAX_STORAGE_GB, checkCpu, checkGb, checkGpu } from '../workloads/limits';

/** api/schemas/pools.py PoolName and TargetSize. */
const POOL_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/;
export const MAX_TARGET_SIZE = 256;

interface PoolForm {
  name: string;
  image_type: string;
  image: string;
  where: 'cluster' | 'server';
  cluster_id: string | null;
  server_id: string | null;
  target_size: number | string;
  port_min: number | string;
  port_max: number | string;
  container_port: number | string;
  cpu: number | string;
  ram_gb: number | string;
  storage_gb: number | string;
  gpu: number | string;
  files_path: string;
}

const INITIAL: PoolForm = {
  name: '',
  image_type: '',
  image: '',
  where: 'cluster',
  cluster_id: null,
  server_id: null,
  target_size: 2,
  port_min: '',
  port_max: '',
  container_port: '',
  cpu: 0.5,
  ram_gb: 0.5,
  storage_gb: 0,
  gpu: 0,
  files_path: DEFAULT_FILES_PATH,
};

type Errors = Record<string, string>;

function isPort(value: number | string): boolean {
  const port = Number(value);
  return value !== '' && Number.isInteger(port) && port >= 1 && port <= 65535;
}

export function checkTargetSize(value: number | string): string | null {
  const size = Number(value);
  if (value === '' || !Number.isInteger(size) || size < 0 || size > MAX_TARGET_SIZE) return `A whole number from 0 to ${MAX_TARGET_SIZE}`;
  return null;
}

function validate(form: PoolForm): Errors {
  const errors: Errors = {};
  if (!POOL_NAME_PATTERN.test(form.name.trim())) errors.name = "Letters, digits, '.', '_' or '-' (at most 64), starting with a letter or digit";
  if (!IMAGE_TYPE_PATTERN.test(form.image_type.trim())) errors.image_type = "Lower-case letters, digits or '-', e.g. nginx";
  const image = form.image.trim();
  if (!image) errors.image = 'Enter an image reference';
  else if (image.length > MAX_IMAGE_LENGTH) errors.image = `At most ${MAX_IMAGE_LENGTH} characters`;
  if (form.where === 'cluster' && !form.cluster_id) errors.cluster_id = 'Choose a cluster';
  if (form.where === 'server' && !form.server_id) errors.server_id = 'Choose a server';
  const size = checkTargetSize(form.target_size);
  if (size) errors.target_size = size;
  if (!isPort(form.port_min)) errors.port_min = 'A port from 1 to 65535';
  if (!isPort(form.port_max)) errors.port_max = 'A port from 1 to 65535';
  else if (isPort(form.port_min) && Number(form.port_max) < Number(form.port_min)) errors.port_max = 'Not below the first port';
  if (form.container_port !== '' && !isPort(form.container_port)) errors.container_port = 'A port from 1 to 65535';
  const checks: [string, string | null][] = [
    ['cpu', checkCpu(form.cpu)],
    ['ram_gb', checkGb(form.ram_gb, MAX_RAM_GB)],
    ['storage_gb', checkGb(form.storage_gb, MAX_STORAGE_GB)],
    ['gpu', checkGpu(form.gpu)],
  ];
  for (const [field, message] of checks) if (message) errors[field] = message;
  if (!FILES_PATH_PATTERN.test(form.files_path.trim())) errors.files_path = 'An absolute path, e.g. /workspace or /usr/share/nginx/html';
  return errors;
}

function toRequest(form: PoolForm): PoolCreate {
  return {
    name: form.name.trim(),
    image_type: form.image_type.trim(),
    image: form.image.trim(),
    cluster_id: form.where === 'cluster' ? form.cluster_id : null,
    server_id: form.where === 'server' ? form.server_id : null,
    target_size: Number(form.target_size),
    port_min: Number(form.port_min),
    port_max: Number(form.port_max),
    container_port: form.container_port === '' ? null : Number(form.container_port),
    cpu: Number(form.cpu),
    ram_gb: Number(form.ram_gb),
    storage_gb: Number(form.storage_gb),
    gpu: Number(form.gpu),
    files_path: form.files_path.trim(),
  };
}

const FIELDS = new Set(Object.keys(INITIAL));

export function CreatePoolModal({ onClose }: { onClose: () => void }) {
  const create = useCreatePool();
  const catalog = useCatalogImages();
  const clusters = useClusters();
  const servers = useServers();
  const [form, setForm] = useState<PoolForm>(INITIAL);
  const [errors, setErrors] = useState<Errors>({});
  const [catalogId, setCatalogId] = useState<string | null>(null);
  const toField = (path: string) => (FIELDS.has(path) ? path : null);
  const refusal = problemsByField(create.error, toField);

  const set = <K extends keyof PoolForm>(field: K, value: PoolForm[K]) => {
    setForm((current) => ({ ...current, [field]: value }));
    setErrors(({ [field as string]: _dropped, ...rest }) => rest);
  };

  const pick = (id: string | null) => {
    setCatalogId(id);
    const image = catalog.data?.data.find((i) => i.id === id);
    if (!image) return;
    // The pool's containers must match what a launch from the catalog asks for.
    setForm((current) => ({
      ...current,
      name: current.name || `${image.name}-warm`,
      image_type: image.type,
      image: image.reference,
      container_port: image.default_port ?? '',
      cpu: image.cpu,
      ram_gb: image.ram_gb,
      storage_gb: image.storage_gb,
      gpu: image.gpu,
      files_path: image.files_path ?? DEFAULT_FILES_PATH,
    }));
    setErrors({});
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const found = validate(form);
    setErrors(found);
    if (Object.keys(found).length > 0) return;
    create.mutate(toRequest(form), {
      onSuccess: (pool) => {
        notifySuccess(`Pool ${pool.name} created; its warm containers are starting.`);
        onClose();
      },
      onError: (error) => setErrors(problemsByField(error, toField).byField),
    });
  };

  return (
    <Modal opened onClose={onClose} title="New warm pool" size="lg" closeButtonProps={MODAL_CLOSE}>
      <form onSubmit={submit} noValidate aria-label="New warm pool">
        <Stack>
          {create.error && (refusal.unplaced.length > 0 || Object.keys(refusal.byField).length === 0) ? (
            <QueryError error={create.error} title="The pool was not created" />
          ) : null}
          <Select
            label="From the catalog"
            description="Fills in the type, reference, port, resources and files path"
            placeholder="Pick an image"
            clearable
            searchable
            data={(catalog.data?.data ?? []).map((i) => ({ value: i.id, label: `${i.name} (${i.reference})` }))}
            value={catalogId}
            onChange={pick}
          />
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <TextInput label="Pool name" required value={form.name} onChange={(e) => set('name', e.currentTarget.value)} error={errors.name} />
            <TextInput label="Image type" required value={form.image_type} onChange={(e) => set('image_type', e.currentTarget.value)} error={errors.image_type} />
            <TextInput label="Image" required value={form.image} onChange={(e) => set('image', e.currentTarget.value)} error={errors.image} />
            <NumberInput
              label="Target size"
              description="Warm containers to keep"
              min={0}
              max={MAX_TARGET_SIZE}
              allowDecimal={false}
              value={form.target_size}
              onChange={(value) => set('target_size', value)}
              error={errors.target_size}
            />
          </SimpleGrid>
          <Stack gap={4}>
            <Text size="sm" fw={500} id="pool-where-label">
              Where
            </Text>
            <SegmentedControl
              aria-labelledby="pool-where-label"
              data={[
                { value: 'cluster', label: 'Anywhere in a cluster' },
                { value: 'server', label: 'On one server' },
              ]}
              value={form.where}
              onChange={(value) => set('where', value as PoolForm['where'])}
            />
          </Stack>
          {form.where === 'cluster' ? (
            <Select
              label="Cluster"
              required
              data={(clusters.data?.data ?? []).map((c) => ({ value: c.id, label: `${c.name} (${c.kind})` }))}
              value={form.cluster_id}
              onChange={(value) => set('cluster_id', value)}
              error={errors.cluster_id}
            />
          ) : (
            <Select
              label="Server"
              required
              searchable
              data={(servers.data?.data ?? []).map((s) => ({ value: s.id, label: s.name }))}
              value={form.server_id}
              onChange={(value) => set('server_id', value)}
              error={errors.server_id}
            />
          )}
          <SimpleGrid cols={{ base: 1, sm: 3 }}>
            <NumberInput label="First host port" required min={1} max={65535} allowDecimal={false} value={form.port_min} onChange={(v) => set('port_min', v)} error={errors.port_min} />
            <NumberInput label="Last host port" required min={1} max={65535} allowDecimal={false} value={form.port_max} onChange={(v) => set('port_max', v)} error={errors.port_max} />
            <NumberInput
              label="Container port"
              description="Empty: none published"
              min={1}
              max={65535}
              allowDecimal={false}
              value={form.container_port}
              onChange={(v) => set('container_port', v)}
              error={errors.container_port}
            />
          </SimpleGrid>
          <SimpleGrid cols={{ base: 2, sm: 4 }}>
            <NumberInput label="CPU cores" min={0} step={0.5} decimalScale={1} value={form.cpu} onChange={(v) => set('cpu', v)} error={errors.cpu} />
            <NumberInput label="RAM (GB)" min={0} step={0.5} decimalScale={3} value={form.ram_gb} onChange={(v) => set('ram_gb', v)} error={errors.ram_gb} />
            <NumberInput label="Storage (GB)" min={0} step={10} decimalScale={3} value={form.storage_gb} onChange={(v) => set('storage_gb', v)} error={errors.storage_gb} />
            <NumberInput label="GPUs" min={0} step={1} decimalScale={2} value={form.gpu} onChange={(v) => set('gpu', v)} error={errors.gpu} />
            <TextInput
              label="Files path"
              description="Where each warm container's files are mounted; a launch takes one only if it mounts its files there too"
              required
              value={form.files_path}
              onChange={(e) => set('files_path', e.currentTarget.value)}
              error={errors.files_path}
            />
          </SimpleGrid>
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={create.isPending}>
              Create pool
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
