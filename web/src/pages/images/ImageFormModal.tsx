/**
 * Add a catalog image, or edit one: name, reference, type, default port and resources,
 * description, where a workload's files are mounted. Checked here against the API's
 * bounds; the API's refusal is shown on the field it names.
 */
import { Button, Group, Modal, NumberInput, SimpleGrid, Stack, TextInput, Textarea } from '@mantine/core';
import { useState, type FormEvent } from 'react';
import { problemsByField } from '../../api/problems';
import { useCreateCatalogImage, useUpdateCatalogImage } from '../../api/queries/images';
import type { CatalogImage, CatalogImageCreate } from '../../api/types';
import { QueryError } from '../../components/QueryError';
import { MODAL_CLOSE } from '../../components/a11y';
import { notifySuccess } from '../../components/notify';
import { FILES_PATH_PATTERN, MAX_IMAGE_LENGTH, MAX_RAM_GB, MAX_STORAGE_GB, checkCpu, checkGb, checkGpu } from '../workloads/limits';

/** domain/image_references.py NAME_PATTERN and TYPE_PATTERN. */
export const IMAGE_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const IMAGE_TYPE_PATTERN = /^[a-z0-9][a-z0-9-]{0,31}$/;
const MAX_DESCRIPTION_LENGTH = 4096;

interface ImageForm {
  name: string;
  reference: string;
  type: string;
  default_port: number | string;
  cpu: number | string;
  ram_gb: number | string;
  storage_gb: number | string;
  gpu: number | string;
  description: string;
  files_path: string;
}

function formOf(image: CatalogImage | null): ImageForm {
  return {
    name: image?.name ?? '',
    reference: image?.reference ?? '',
    type: image?.type ?? '',
    default_port: image?.default_port ?? '',
    cpu: image?.cpu ?? 1,
    ram_gb: image?.ram_gb ?? 1,
    storage_gb: image?.storage_gb ?? 0,
    gpu: image?.gpu ?? 0,
    description: image?.description ?? '',
    files_path: image?.files_path ?? '',
  };
}

type Errors = Partial<Record<keyof ImageForm, string>>;

function validate(form: ImageForm): Errors {
  const errors: Errors = {};
  if (!IMAGE_NAME_PATTERN.test(form.name.trim()))
    errors.name = "Lower-case letters, digits, '.', '_' or '-' (at most 64), starting with a letter or digit";
  const reference = form.reference.trim();
  if (!reference) errors.reference = 'Enter an image reference, e.g. nginx:1.27';
  else if (reference.length > MAX_IMAGE_LENGTH) errors.reference = `At most ${MAX_IMAGE_LENGTH} characters`;
  if (!IMAGE_TYPE_PATTERN.test(form.type.trim()))
    errors.type = "Lower-case letters, digits or '-' (at most 32), e.g. nginx";
  if (form.default_port !== '') {
    const port = Number(form.default_port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) errors.default_port = 'A port from 1 to 65535';
  }
  const checks: [keyof ImageForm, string | null][] = [
    ['cpu', checkCpu(form.cpu)],
    ['ram_gb', checkGb(form.ram_gb, MAX_RAM_GB)],
    ['storage_gb', checkGb(form.storage_gb, MAX_STORAGE_GB)],
    ['gpu', checkGpu(form.gpu)],
  ];
  for (const [field, message] of checks) if (message) errors[field] = message;
  if (form.description.length > MAX_DESCRIPTION_LENGTH) errors.description = `At most ${MAX_DESCRIPTION_LENGTH} characters`;
  if (form.files_path && !FILES_PATH_PATTERN.test(form.files_path)) errors.files_path = 'An absolute path, e.g. /usr/share/nginx/html';
  return errors;
}

function toRequest(form: ImageForm): CatalogImageCreate {
  return {
    name: form.name.trim(),
    reference: form.reference.trim(),
    type: form.type.trim(),
    default_port: form.default_port === '' ? null : Number(form.default_port),
    cpu: Number(form.cpu),
    ram_gb: Number(form.ram_gb),
    storage_gb: Number(form.storage_gb),
    gpu: Number(form.gpu),
    description: form.description,
    files_path: form.files_path || null,
  };
}

const FIELDS = new Set<string>(Object.keys(formOf(null)));

/** `image` null: a new one. Mounted only while open (its form starts from `image`). */
export function ImageFormModal({ image, onClose }: { image: CatalogImage | null; onClose: () => void }) {
  const create = useCreateCatalogImage();
  const update = useUpdateCatalogImage();
  const [form, setForm] = useState<ImageForm>(() => formOf(image));
  const [errors, setErrors] = useState<Errors>({});
  const mutation = image ? update : create;
  const refusal = problemsByField(mutation.error, (path) => (FIELDS.has(path) ? path : null));

  const set = <K extends keyof ImageForm>(field: K, value: ImageForm[K]) => {
    setForm((current) => ({ ...current, [field]: value }));
    setErrors(({ [field]: _dropped, ...rest }) => rest as Errors);
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const found = validate(form);
    setErrors(found);
    if (Object.keys(found).length > 0) return;
    const body = toRequest(form);
    const done = {
      onSuccess: () => {
        notifySuccess(`Image ${body.name} ${image ? 'saved' : 'added to the catalog'}.`);
        onClose();
      },
      onError: (error: unknown) => setErrors(problemsByField(error, (path) => (FIELDS.has(path) ? path : null)).byField),
    };
    if (image) update.mutate({ id: image.id, body }, done);
    else create.mutate(body, done);
  };

  const title = image ? `Edit image ${image.name}` : 'Add an image';
  return (
    <Modal opened onClose={onClose} title={title} size="lg" closeButtonProps={MODAL_CLOSE}>
      <form onSubmit={submit} noValidate aria-label={title}>
        <Stack>
          {mutation.error && (refusal.unplaced.length > 0 || Object.keys(refusal.byField).length === 0) ? (
            <QueryError error={mutation.error} title="The image was not saved" />
          ) : null}
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <TextInput label="Name" required value={form.name} onChange={(e) => set('name', e.currentTarget.value)} error={errors.name} data-autofocus />
            <TextInput
              label="Reference"
              placeholder="nginx:1.27"
              required
              value={form.reference}
              onChange={(e) => set('reference', e.currentTarget.value)}
              error={errors.reference}
              maxLength={MAX_IMAGE_LENGTH}
            />
            <TextInput
              label="Type"
              description="The slug pools match on: nginx, python, ubuntu-ssh…"
              required
              value={form.type}
              onChange={(e) => set('type', e.currentTarget.value)}
              error={errors.type}
            />
            <NumberInput
              label="Default port"
              description="Published when launched; empty: none"
              min={1}
              max={65535}
              allowDecimal={false}
              value={form.default_port}
              onChange={(value) => set('default_port', value)}
              error={errors.default_port}
            />
            <NumberInput label="CPU cores" min={0} step={0.5} decimalScale={1} value={form.cpu} onChange={(value) => set('cpu', value)} error={errors.cpu} />
            <NumberInput label="RAM (GB)" min={0} step={1} decimalScale={3} value={form.ram_gb} onChange={(value) => set('ram_gb', value)} error={errors.ram_gb} />
            <NumberInput
              label="Storage (GB)"
              min={0}
              step={10}
              decimalScale={3}
              value={form.storage_gb}
              onChange={(value) => set('storage_gb', value)}
              error={errors.storage_gb}
            />
            <NumberInput label="GPUs" min={0} step={1} decimalScale={2} value={form.gpu} onChange={(value) => set('gpu', value)} error={errors.gpu} />
          </SimpleGrid>
          <TextInput
            label="Files path"
            description="Where a launch from it mounts its files directory; empty: /workspace"
            placeholder="/usr/share/nginx/html"
            value={form.files_path}
            onChange={(e) => set('files_path', e.currentTarget.value)}
            error={errors.files_path}
          />
          <Textarea
            label="Description"
            autosize
            minRows={2}
            maxRows={6}
            value={form.description}
            onChange={(e) => set('description', e.currentTarget.value)}
            error={errors.description}
          />
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={mutation.isPending}>
              {image ? 'Save image' : 'Add image'}
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
