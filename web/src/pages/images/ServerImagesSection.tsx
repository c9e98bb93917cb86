/**
 * The images on one docker server (operators and admins): what is present (and remove
 * a tag), and pull, build (from an uploaded tar of the build context) and push to a
 * configured registry, each with its progress streamed as it happens.
 */
import { Button, FileInput, Group, Paper, Select, SimpleGrid, Stack, Table, Tabs, Text, TextInput, Title } from '@mantine/core';
import { IconDownload, IconHammer, IconUpload } from '@tabler/icons-react';
import { useState, type FormEvent } from 'react';
import { useClusters, useServers } from '../../api/queries/fleet';
import {
  useImageOperation,
  useRegistries,
  useRemoveServerImage,
  useServerImages,
  type ImageOperation,
} from '../../api/queries/images';
import type { HostImage } from '../../api/types';
import { QueryError } from '../../components/QueryError';
import { confirmAction } from '../../components/confirm';
import { notifyError, notifySuccess } from '../../components/notify';
import { ProgressLog } from './ProgressLog';

const TITLES: Record<ImageOperation['kind'], string> = { pull: 'Pull', build: 'Build', push: 'Push' };

function size(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${Math.ceil(bytes / 1024)} KiB`;
}

function PresentImages({ serverId, onPush }: { serverId: string; onPush: (source: string) => void }) {
  const images = useServerImages(serverId);
  const remove = useRemoveServerImage();
  const confirmRemove = (reference: string) =>
    confirmAction({
      title: `Remove ${reference} from the server?`,
      message: 'The tag goes; the image goes with its last tag. A container that uses it keeps it (409).',
      confirmLabel: 'Remove image',
      onConfirm: () =>
        remove.mutate(
          { serverId, reference },
          {
            onSuccess: () => notifySuccess(`${reference} removed from the server.`),
            onError: (error) => notifyError(error, `${reference} was not removed`),
          },
        ),
    });
  if (images.error) return <QueryError error={images.error} title="Could not list the server's images" />;
  if (!images.data) return <Text c="dimmed">Loading…</Text>;
  if (images.data.data.length === 0) return <Text c="dimmed">No images on this server.</Text>;
  return (
    <Table withTableBorder striped data-testid="server-images-table" aria-label="Images on the server">
      <Table.Thead>
        <Table.Tr>
          <Table.Th scope="col">Tag</Table.Th>
          <Table.Th scope="col">Id</Table.Th>
          <Table.Th scope="col">Size</Table.Th>
          <Table.Th scope="col">Created</Table.Th>
          <Table.Th scope="col">Actions</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {/* One row per tag (an untagged image: one row): each tag is pushed or removed. */}
        {images.data.data.flatMap((image: HostImage) =>
          (image.tags.length ? image.tags : [null]).map((tag) => (
            <Table.Tr key={`${image.id} ${tag ?? ''}`}>
              <Table.Th scope="row">{tag ?? '<untagged>'}</Table.Th>
              <Table.Td>
                <code>{image.id.replace(/^sha256:/, '').slice(0, 12)}</code>
              </Table.Td>
              <Table.Td>{size(image.size_bytes)}</Table.Td>
              <Table.Td>{image.created_at ? new Date(image.created_at).toLocaleString() : '—'}</Table.Td>
              <Table.Td>
                {tag && (
                  <Group gap="xs" wrap="nowrap">
                    <Button size="xs" variant="default" onClick={() => onPush(tag)} aria-label={`Push ${tag}`}>
                      Push
                    </Button>
                    <Button size="xs" variant="outline" color="red" onClick={() => confirmRemove(tag)} aria-label={`Remove ${tag}`}>
                      Remove
                    </Button>
                  </Group>
                )}
              </Table.Td>
            </Table.Tr>
          )),
        )}
      </Table.Tbody>
    </Table>
  );
}

export function ServerImagesSection() {
  const clusters = useClusters();
  const dockerClusters = new Set((clusters.data?.data ?? []).filter((c) => c.kind === 'docker').map((c) => c.id));
  const servers = useServers();
  const dockerServers = (servers.data?.data ?? []).filter((s) => dockerClusters.has(s.cluster_id));
  const registries = useRegistries();
  const operation = useImageOperation();
  const [serverId, setServerId] = useState<string | null>(null);
  const [tab, setTab] = useState<string | null>('pull');
  const [lastKind, setLastKind] = useState<ImageOperation['kind']>('pull');
  const [reference, setReference] = useState('');
  const [pullRegistry, setPullRegistry] = useState<string | null>(null);
  const [tag, setTag] = useState('');
  const [dockerfile, setDockerfile] = useState('Dockerfile');
  const [context, setContext] = useState<File | null>(null);
  const [source, setSource] = useState('');
  const [pushRegistry, setPushRegistry] = useState<string | null>(null);
  const [target, setTarget] = useState('');

  const selected = serverId ?? dockerServers[0]?.id ?? null;
  const registryChoices = (registries.data?.data ?? []).map((r) => ({ value: r.id, label: `${r.name} (${r.url})` }));

  const run = (event: FormEvent, op: ImageOperation | null) => {
    event.preventDefault();
    if (!op) return;
    setLastKind(op.kind);
    void operation.start(op);
  };

  return (
    <Paper withBorder p="md" component="section" aria-labelledby="server-images-title">
      <Stack>
        <Title order={2} size="h3" id="server-images-title">
          Images on a server
        </Title>
        <QueryError error={servers.error ?? clusters.error} title="Could not load the servers" />
        {servers.data && dockerServers.length === 0 ? (
          <Text c="dimmed">No docker server: images live on docker hosts (simulated servers have none).</Text>
        ) : (
          <Select
            label="Docker server"
            data={dockerServers.map((s) => ({ value: s.id, label: `${s.name} (${s.status})` }))}
            value={selected}
            onChange={setServerId}
            allowDeselect={false}
            maw={420}
          />
        )}
        {selected && (
          <>
            <PresentImages
              serverId={selected}
              onPush={(tagged) => {
                setSource(tagged);
                setTab('push');
              }}
            />
            <Tabs value={tab} onChange={setTab}>
              <Tabs.List>
                <Tabs.Tab value="pull" leftSection={<IconDownload size={16} />}>
                  Pull
                </Tabs.Tab>
                <Tabs.Tab value="build" leftSection={<IconHammer size={16} />}>
                  Build
                </Tabs.Tab>
                <Tabs.Tab value="push" leftSection={<IconUpload size={16} />}>
                  Push
                </Tabs.Tab>
              </Tabs.List>
              <Tabs.Panel value="pull" pt="md">
                <form
                  aria-label="Pull an image"
                  onSubmit={(e) =>
                    run(e, reference.trim() ? { kind: 'pull', serverId: selected, reference: reference.trim(), registryId: pullRegistry } : null)
                  }
                >
                  <SimpleGrid cols={{ base: 1, sm: 3 }}>
                    <TextInput label="Reference to pull" placeholder="nginx:1.27" required value={reference} onChange={(e) => setReference(e.currentTarget.value)} />
                    <Select
                      label="From registry"
                      description="Default: the one configured at the reference's address"
                      placeholder="Default"
                      clearable
                      data={registryChoices}
                      value={pullRegistry}
                      onChange={setPullRegistry}
                    />
                    <Group align="end">
                      <Button type="submit" loading={operation.running && lastKind === 'pull'} disabled={operation.running}>
                        Pull
                      </Button>
                    </Group>
                  </SimpleGrid>
                </form>
              </Tabs.Panel>
              <Tabs.Panel value="build" pt="md">
                <form
                  aria-label="Build an image"
                  onSubmit={(e) =>
                    run(e, tag.trim() && context ? { kind: 'build', serverId: selected, tag: tag.trim(), dockerfile: dockerfile.trim() || 'Dockerfile', context } : null)
                  }
                >
                  <SimpleGrid cols={{ base: 1, sm: 2 }}>
                    <TextInput label="Tag" placeholder="team/app:1.0" required value={tag} onChange={(e) => setTag(e.currentTarget.value)} />
                    <TextInput
                      label="Dockerfile"
                      description="Its path inside the context"
                      value={dockerfile}
                      onChange={(e) => setDockerfile(e.currentTarget.value)}
                    />
                    <FileInput
                      label="Build context (tar)"
                      description="A tar of the context holding the Dockerfile"
                      placeholder="Choose a .tar file"
                      required
                      accept=".tar,application/x-tar"
                      value={context}
                      onChange={setContext}
                      clearable
                      clearButtonProps={{ 'aria-label': 'Clear the build context' }}
                    />
                    <Group align="end">
                      <Button type="submit" loading={operation.running && lastKind === 'build'} disabled={operation.running}>
                        Build
                      </Button>
                    </Group>
                  </SimpleGrid>
                </form>
              </Tabs.Panel>
              <Tabs.Panel value="push" pt="md">
                {registries.data && registryChoices.length === 0 ? (
                  <Text c="dimmed">No registry is configured: an admin adds one below.</Text>
                ) : (
                  <form
                    aria-label="Push an image"
                    onSubmit={(e) =>
                      run(
                        e,
                        source.trim() && pushRegistry
                          ? { kind: 'push', serverId: selected, source: source.trim(), registryId: pushRegistry, target: target.trim() || null }
                          : null,
                      )
                    }
                  >
                    <SimpleGrid cols={{ base: 1, sm: 2 }}>
                      <TextInput label="Image to push" placeholder="team/app:1.0" required value={source} onChange={(e) => setSource(e.currentTarget.value)} />
                      <Select label="To registry" required data={registryChoices} value={pushRegistry} onChange={setPushRegistry} />
                      <TextInput
                        label="As"
                        description="repository[:tag] there; default: the image's own"
                        value={target}
                        onChange={(e) => setTarget(e.currentTarget.value)}
                      />
                      <Group align="end">
                        <Button type="submit" loading={operation.running && lastKind === 'push'} disabled={operation.running}>
                          Push
                        </Button>
                      </Group>
                    </SimpleGrid>
                  </form>
                )}
              </Tabs.Panel>
            </Tabs>
            <ProgressLog title={TITLES[lastKind]} state={operation} />
          </>
        )}
      </Stack>
    </Paper>
  );
}
