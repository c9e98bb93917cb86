/** Register a server: the form follows the cluster's kind (simulated: declared capacity; docker: an agent). */
import { ActionIcon, Button, Group, Modal, NumberInput, PasswordInput, Select, Stack, Text, TextInput } from '@mantine/core';
import { IconPlus, IconTrash } from '@tabler/icons-react';
import { useState, type FormEvent } from 'react';
import { useClusters, useRegisterServer } from '../../api/queries/fleet';
import type { ServerCreate } from '../../api/types';
import { QueryError } from '../../components/QueryError';
import { MODAL_CLOSE } from '../../components/a11y';

interface GpuRow {
  model: string;
  memory_gb: number | string;
  count: number | string;
}

const asNumber = (value: number | string): number => (typeof value === 'number' ? value : Number(value));

export function RegisterServerModal({ opened, onClose }: { opened: boolean; onClose: () => void }) {
  const clusters = useClusters();
  const register = useRegisterServer();
  const [clusterId, setClusterId] = useState<string | null>(null);
  const [name, setName] = useState('');
  const [cpu, setCpu] = useState<number | string>(16);
  const [ramGb, setRamGb] = useState<number | string>(64);
  const [storageGb, setStorageGb] = useState<number | string>(500);
  const [gpus, setGpus] = useState<GpuRow[]>([{ model: 'NVIDIA A100', memory_gb: 80, count: 4 }]);
  const [agentUrl, setAgentUrl] = useState('');
  const [agentToken, setAgentToken] = useState('');
  const [hostPorts, setHostPorts] = useState('');

  const cluster = clusters.data?.data.find((c) => c.id === clusterId);
  const kind = cluster?.kind;

  const close = () => {
    register.reset();
    onClose();
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!clusterId) return;
    const body: ServerCreate =
      kind === 'docker'
        ? {
            name,
            cluster_id: clusterId,
            storage_gb: asNumber(storageGb),
            agent_url: agentUrl,
            agent_token: agentToken,
            host_ports: hostPorts || null,
          }
        : {
            name,
            cluster_id: clusterId,
            cpu: asNumber(cpu),
            ram_gb: asNumber(ramGb),
            storage_gb: asNumber(storageGb),
            gpus: gpus.flatMap((row) =>
              Array.from({ length: asNumber(row.count) }, () => ({ model: row.model, memory_gb: asNumber(row.memory_gb) })),
            ),
          };
    register.mutate(body, {
      onSuccess: () => {
        setName('');
        close();
      },
    });
  };

  const setGpu = (index: number, patch: Partial<GpuRow>) =>
    setGpus((rows) => rows.map((row, i) => (i === index ? { ...row, ...patch } : row)));

  return (
    <Modal opened={opened} onClose={close} title="Register a server" size="lg" closeButtonProps={MODAL_CLOSE}>
      <form onSubmit={submit}>
        <Stack>
          <Select
            label="Cluster"
            required
            placeholder="Choose a cluster"
            data={(clusters.data?.data ?? []).map((c) => ({ value: c.id, label: `${c.name} (${c.kind})` }))}
            value={clusterId}
            onChange={setClusterId}
          />
          <TextInput label="Name" required value={name} onChange={(e) => setName(e.currentTarget.value)} maxLength={64} />
          {kind === 'kubernetes' && (
            <Text size="sm">Kubernetes clusters bring their nodes themselves; servers are not registered by hand.</Text>
          )}
          {kind === 'docker' && (
            <>
              <TextInput
                label="Agent URL"
                required
                placeholder="http://10.0.0.5:8765"
                value={agentUrl}
                onChange={(e) => setAgentUrl(e.currentTarget.value)}
                description="The server's gpuyard agent; capacity comes from its inventory."
              />
              <PasswordInput label="Agent token" required value={agentToken} onChange={(e) => setAgentToken(e.currentTarget.value)} />
              <NumberInput label="Storage (GB)" min={0} value={storageGb} onChange={setStorageGb} />
              <TextInput
                label="Host port range"
                placeholder="20000-20999"
                value={hostPorts}
                onChange={(e) => setHostPorts(e.currentTarget.value)}
              />
            </>
          )}
          {kind === 'simulated' && (
            <>
              <Group grow>
                <NumberInput label="CPU cores" required min={1} value={cpu} onChange={setCpu} />
                <NumberInput label="RAM (GB)" required min={1} value={ramGb} onChange={setRamGb} />
                <NumberInput label="Storage (GB)" required min={0} value={storageGb} onChange={setStorageGb} />
              </Group>
              <Text fw={500} size="sm">
                GPUs
              </Text>
              {gpus.map((row, index) => (
                <Group key={index} align="end" wrap="nowrap">
                  <TextInput
                    label={`GPU model (row ${index + 1})`}
                    value={row.model}
                    onChange={(e) => setGpu(index, { model: e.currentTarget.value })}
                    style={{ flex: 2 }}
                  />
                  <NumberInput
                    label={`VRAM GB (row ${index + 1})`}
                    min={1}
                    value={row.memory_gb}
                    onChange={(value) => setGpu(index, { memory_gb: value })}
                    style={{ flex: 1 }}
                  />
                  <NumberInput
                    label={`Count (row ${index + 1})`}
                    min={1}
                    max={16}
                    value={row.count}
                    onChange={(value) => setGpu(index, { count: value })}
                    style={{ flex: 1 }}
                  />
                  <ActionIcon
                    variant="default"
                    size="lg"
                    aria-label={`Remove GPU row ${index + 1}`}
                    onClick={() => setGpus((rows) => rows.filter((_, i) => i !== index))}
                  >
                    <IconTrash size={16} />
                  </ActionIcon>
                </Group>
              ))}
              <Group>
                <Button
                  variant="default"
                  size="xs"
                  leftSection={<IconPlus size={14} />}
                  onClick={() => setGpus((rows) => [...rows, { model: '', memory_gb: 24, count: 1 }])}
                >
                  Add GPUs
                </Button>
              </Group>
            </>
          )}
          <QueryError error={register.error} title="Could not register the server" />
          <Group justify="flex-end">
            <Button variant="default" onClick={close}>
              Cancel
            </Button>
            <Button type="submit" loading={register.isPending} disabled={!clusterId || kind === 'kubernetes'}>
              Register
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
