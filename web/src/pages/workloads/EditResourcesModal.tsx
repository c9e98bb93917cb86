/**
 * Edit a workload's resources, GPU model, priority and preemptibility (PATCH). Mount it
 * when it opens: the draft starts from the workload as it is then.
 */
import { Alert, Button, Checkbox, Group, Modal, NumberInput, Select, SimpleGrid, Stack, Text } from '@mantine/core';
import { useState, type FormEvent } from 'react';
import { problemsByField } from '../../api/problems';
import { useFleetOverview } from '../../api/queries/fleet';
import { useMe } from '../../api/queries/session';
import { useUpdateWorkload } from '../../api/queries/workloads';
import type { Workload, WorkloadUpdate } from '../../api/types';
import { QueryError } from '../../components/QueryError';
import { MAX_RAM_GB, MAX_STORAGE_GB, checkCpu, checkGb, checkGpu, highestPriorityFor, priorityChoices, shareRuleOf } from './limits';

interface Draft {
  cpu: number | string;
  ram_gb: number | string;
  storage_gb: number | string;
  gpu: number | string;
  gpu_model: string | null;
  priority: string;
  preemptible: boolean;
}

function draftOf(workload: Workload): Draft {
  return {
    cpu: workload.cpu,
    ram_gb: workload.ram_gb,
    storage_gb: workload.storage_gb,
    gpu: workload.gpu,
    gpu_model: workload.gpu_model,
    priority: String(workload.priority),
    preemptible: workload.preemptible,
  };
}

const API_FIELDS = new Set(['cpu', 'ram_gb', 'storage_gb', 'gpu', 'gpu_model', 'priority', 'preemptible']);

/** Only what changed goes in the PATCH. */
function changes(workload: Workload, draft: Draft): WorkloadUpdate {
  const body: WorkloadUpdate = {};
  if (Number(draft.cpu) !== workload.cpu) body.cpu = Number(draft.cpu);
  if (Number(draft.ram_gb) !== workload.ram_gb) body.ram_gb = Number(draft.ram_gb);
  if (Number(draft.storage_gb) !== workload.storage_gb) body.storage_gb = Number(draft.storage_gb);
  if (Number(draft.gpu) !== workload.gpu) body.gpu = Number(draft.gpu);
  if (draft.gpu_model && draft.gpu_model !== workload.gpu_model) body.gpu_model = draft.gpu_model;
  if (Number(draft.priority) !== workload.priority) body.priority = Number(draft.priority);
  if (draft.preemptible !== workload.preemptible) body.preemptible = draft.preemptible;
  return body;
}

export function EditResourcesModal({
  workload,
  opened,
  onClose,
}: {
  workload: Workload;
  opened: boolean;
  onClose: () => void;
}) {
  const [draft, setDraft] = useState<Draft>(() => draftOf(workload));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const update = useUpdateWorkload(workload.id);
  const overview = useFleetOverview(workload.cluster_id);
  const highestPriority = highestPriorityFor(useMe().data, workload.team_id);
  const models = overview.data?.gpu_models.map((m) => m.model) ?? [];
  if (workload.gpu_model && !models.includes(workload.gpu_model)) models.push(workload.gpu_model);

  const set = <K extends keyof Draft>(field: K, value: Draft[K]) => {
    setDraft((current) => ({ ...current, [field]: value }));
    setErrors(({ [field as string]: _dropped, ...rest }) => rest);
  };
  const close = () => {
    update.reset();
    setErrors({});
    onClose();
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const found: Record<string, string> = {};
    const checks: [string, string | null][] = [
      ['cpu', checkCpu(draft.cpu)],
      ['ram_gb', checkGb(draft.ram_gb, MAX_RAM_GB)],
      ['storage_gb', checkGb(draft.storage_gb, MAX_STORAGE_GB)],
      ['gpu', checkGpu(draft.gpu, shareRuleOf(overview.data))],
    ];
    for (const [field, message] of checks) if (message) found[field] = message;
    setErrors(found);
    if (Object.keys(found).length > 0) return;
    const body = changes(workload, draft);
    if (Object.keys(body).length === 0) {
      close();
      return;
    }
    update.mutate(body, {
      onSuccess: close,
      onError: (error) =>
        setErrors(problemsByField(error, (path) => (API_FIELDS.has(path) ? path : null)).byField),
    });
  };

  const refusal = problemsByField(update.error, (path) => (API_FIELDS.has(path) ? path : null));
  const running = ['scheduled', 'starting', 'running'].includes(workload.status);

  return (
    <Modal opened={opened} onClose={close} title={`Edit ${workload.name}`} size="lg">
      <form onSubmit={submit} noValidate aria-label="Edit resources">
        <Stack gap="md">
          {running && (
            <Alert color="blue">
              Resized where it runs when it still fits (and no container must be recreated); otherwise it gives its
              place back and waits in the queue.
            </Alert>
          )}
          {update.error && (refusal.unplaced.length > 0 || Object.keys(refusal.byField).length === 0) && (
            <QueryError error={update.error} title="Not changed" />
          )}
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <NumberInput label="CPU cores" min={0} step={0.5} decimalScale={1} value={draft.cpu} onChange={(v) => set('cpu', v)} error={errors.cpu} />
            <NumberInput label="RAM (GB)" min={0} decimalScale={3} value={draft.ram_gb} onChange={(v) => set('ram_gb', v)} error={errors.ram_gb} />
            <NumberInput label="Storage (GB)" min={0} decimalScale={3} value={draft.storage_gb} onChange={(v) => set('storage_gb', v)} error={errors.storage_gb} />
            <NumberInput label="GPUs" min={0} decimalScale={3} value={draft.gpu} onChange={(v) => set('gpu', v)} error={errors.gpu} />
            <Select
              label="GPU model"
              placeholder="Any model"
              data={models}
              value={draft.gpu_model}
              onChange={(v) => set('gpu_model', v)}
              error={errors.gpu_model}
              disabled={!(Number(draft.gpu) > 0)}
              clearable={!workload.gpu_model}
            />
            <Select
              label="Priority"
              description={`Up to ${highestPriority} for you`}
              data={priorityChoices(highestPriority, workload.priority)}
              value={draft.priority}
              onChange={(v) => set('priority', v ?? draft.priority)}
              error={errors.priority}
              allowDeselect={false}
            />
          </SimpleGrid>
          <Checkbox
            label="Preemptible: higher-priority work may evict it"
            checked={draft.preemptible}
            onChange={(e) => set('preemptible', e.currentTarget.checked)}
            error={errors.preemptible}
          />
          <Text size="xs" c="dimmed">
            Only what you change is sent.
          </Text>
          <Group justify="flex-end">
            <Button variant="default" onClick={close}>
              Cancel
            </Button>
            <Button type="submit" loading={update.isPending}>
              Save
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
