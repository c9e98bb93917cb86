/**
 * The image catalog: every image with its reference, type, default port and resources;
 * a launch from any of them. Operators and admins add, edit and delete entries, and see
 * the images on each docker server (pull, build, push) and the registries; admins manage
 * the registries. For everyone else the page is the catalog, read-only.
 */
import { Anchor, Button, Code, Group, Stack, Table, Text } from '@mantine/core';
import { IconPlus, IconRocket } from '@tabler/icons-react';
import { useState } from 'react';
import { Link } from 'react-router-dom';
import { useCatalogImages, useDeleteCatalogImage } from '../../api/queries/images';
import { useMe } from '../../api/queries/session';
import type { CatalogImage } from '../../api/types';
import { ADMINS, FLEET_STAFF, mayOpen } from '../../auth/roles';
import { PageHeader } from '../../components/PageHeader';
import { QueryError } from '../../components/QueryError';
import { confirmAction } from '../../components/confirm';
import { notifySuccess } from '../../components/notify';
import { amount } from '../workloads/limits';
import { ImageFormModal } from './ImageFormModal';
import { RegistriesSection } from './RegistriesSection';
import { ServerImagesSection } from './ServerImagesSection';

export function defaultResources(image: CatalogImage): string {
  const parts = [`${amount(image.cpu)} CPU`, `${amount(image.ram_gb)} GB RAM`];
  if (image.storage_gb) parts.push(`${amount(image.storage_gb)} GB storage`);
  if (image.gpu) parts.push(`${amount(image.gpu)} GPU`);
  return parts.join(' · ');
}

function CatalogTable({ canManage, onEdit }: { canManage: boolean; onEdit: (image: CatalogImage) => void }) {
  const images = useCatalogImages();
  const remove = useDeleteCatalogImage();
  const confirmDelete = (image: CatalogImage) =>
    confirmAction({
      title: `Delete image ${image.name}?`,
      message: 'It leaves the catalog; workloads already launched from it carry on, and nothing is removed from servers.',
      confirmLabel: 'Delete image',
      onConfirm: () => remove.mutate(image.id, { onSuccess: () => notifySuccess(`Image ${image.name} deleted.`) }),
    });

  if (images.error) return <QueryError error={images.error} title="Could not load the catalog" />;
  if (!images.data) return <Text c="dimmed">Loading…</Text>;
  return (
    <Stack gap="sm">
      <QueryError error={remove.error} title="Could not delete the image" />
      {images.data.data.length === 0 ? (
        <Text c="dimmed">The catalog is empty{canManage ? ': add the first image.' : '.'}</Text>
      ) : (
        <Table.ScrollContainer minWidth={800}>
          <Table withTableBorder striped data-testid="catalog-table" aria-label="Image catalog">
            <Table.Thead>
              <Table.Tr>
                <Table.Th scope="col">Name</Table.Th>
                <Table.Th scope="col">Reference</Table.Th>
                <Table.Th scope="col">Type</Table.Th>
                <Table.Th scope="col">Port</Table.Th>
                <Table.Th scope="col">Default resources</Table.Th>
                <Table.Th scope="col">Description</Table.Th>
                <Table.Th scope="col">Actions</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {images.data.data.map((image) => (
                <Table.Tr key={image.id}>
                  <Table.Th scope="row">{image.name}</Table.Th>
                  <Table.Td>
                    <Code>{image.reference}</Code>
                  </Table.Td>
                  <Table.Td>{image.type}</Table.Td>
                  <Table.Td>{image.default_port ?? '—'}</Table.Td>
                  <Table.Td>{defaultResources(image)}</Table.Td>
                  <Table.Td>{image.description || '—'}</Table.Td>
                  <Table.Td>
                    <Group gap="xs" wrap="nowrap">
                      <Button
                        size="xs"
                        variant="light"
                        component={Link}
                        to={`/launch?image=${encodeURIComponent(image.id)}`}
                        leftSection={<IconRocket size={14} />}
                        aria-label={`Launch ${image.name}`}
                      >
                        Launch
                      </Button>
                      {canManage && (
                        <>
                          <Button size="xs" variant="default" onClick={() => onEdit(image)} aria-label={`Edit ${image.name}`}>
                            Edit
                          </Button>
                          <Button
                            size="xs"
                            variant="outline"
                            color="red"
                            onClick={() => confirmDelete(image)}
                            aria-label={`Delete ${image.name}`}
                          >
                            Delete
                          </Button>
                        </>
                      )}
                    </Group>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
    </Stack>
  );
}

export function ImagesPage() {
  const me = useMe();
  const role = me.data?.role;
  const canManage = mayOpen(role, FLEET_STAFF);
  // null: closed; 'new': adding; an image: editing it.
  const [editing, setEditing] = useState<CatalogImage | 'new' | null>(null);

  return (
    <>
      <PageHeader
        title="Images"
        actions={
          canManage && (
            <Button leftSection={<IconPlus size={16} />} onClick={() => setEditing('new')}>
              Add image
            </Button>
          )
        }
      />
      <Stack gap="lg">
        <Stack gap="xs" component="section" aria-label="Catalog">
          {!canManage && (
            <Text size="sm" c="dimmed">
              Launch any of these with its defaults filled in; operators and admins keep the catalog.{' '}
              <Anchor component={Link} to="/launch" underline="always">
                Launch something else
              </Anchor>
            </Text>
          )}
          <CatalogTable canManage={canManage} onEdit={setEditing} />
        </Stack>
        {canManage && <ServerImagesSection />}
        {canManage && <RegistriesSection canManage={mayOpen(role, ADMINS)} />}
      </Stack>
      {editing !== null && (
        <ImageFormModal
          key={editing === 'new' ? 'new' : editing.id}
          image={editing === 'new' ? null : editing}
          onClose={() => setEditing(null)}
        />
      )}
    </>
  );
}
