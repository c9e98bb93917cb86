/**
 * A workload's workspace: browse directories, upload with progress, download, delete.
 * Downloads are plain links: the session cookie goes with a same-origin GET.
 */
import {
  ActionIcon,
  Anchor,
  Box,
  Breadcrumbs,
  Button,
  FileButton,
  Group,
  Progress,
  Stack,
  Table,
  Text,
  Tooltip,
  UnstyledButton,
} from '@mantine/core';
import {
  IconArrowUp,
  IconDownload,
  IconFile,
  IconFolder,
  IconLink,
  IconRefresh,
  IconTrash,
  IconUpload,
} from '@tabler/icons-react';
import { useState } from 'react';
import {
  parentPath,
  useDeleteWorkloadFile,
  useUploadWorkloadFiles,
  useWorkloadFiles,
  workspaceFilePath,
} from '../../../api/queries/files';
import type { FileEntry } from '../../../api/types';
import { QueryError } from '../../../components/QueryError';
import { confirmAction } from '../../../components/confirm';

/** "512 B", "1.5 KiB", "3.2 MiB", "1.0 GiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function EntryIcon({ entry }: { entry: FileEntry }) {
  if (entry.type === 'dir') return <IconFolder size={16} aria-hidden />;
  if (entry.type === 'symlink') return <IconLink size={16} aria-hidden />;
  return <IconFile size={16} aria-hidden />;
}

function isCancelled(error: unknown): boolean {
  return error instanceof DOMException && error.name === 'AbortError';
}

export interface FilesPanelProps {
  workloadId: string;
  /** Whether the workload has a workspace to show now (false: the list is not asked for). */
  enabled?: boolean;
}

export function FilesPanel({ workloadId, enabled = true }: FilesPanelProps) {
  const [dir, setDir] = useState('');
  /** The last change that worked, said in a live region. */
  const [done, setDone] = useState('');
  const listing = useWorkloadFiles(workloadId, dir, { enabled });
  const upload = useUploadWorkloadFiles(workloadId);
  const remove = useDeleteWorkloadFile(workloadId);

  const segments = dir.split('/').filter(Boolean);
  const entries = [...(listing.data?.data ?? [])].sort(
    (a, b) => Number(b.type === 'dir') - Number(a.type === 'dir') || a.name.localeCompare(b.name),
  );

  const confirmDelete = (entry: FileEntry) =>
    confirmAction({
      title: `Delete ${entry.name}?`,
      message:
        entry.type === 'dir'
          ? `The folder ${entry.path} is removed from the workspace (only an empty folder can be).`
          : `${entry.path} is removed from the workspace (${formatBytes(entry.size)}); this cannot be undone.`,
      confirmLabel: entry.type === 'dir' ? 'Delete folder' : 'Delete file',
      onConfirm: () => {
        setDone('');
        remove.mutate(entry.path, { onSuccess: () => setDone(`Deleted ${entry.path}.`) });
      },
    });

  const startUpload = (files: File[]) => {
    if (files.length === 0) return;
    setDone('');
    upload.mutate(
      { dir, files },
      {
        onSuccess: (uploaded) => setDone(`Uploaded ${uploaded.map((entry) => entry.path).join(', ')}.`),
        onError: (error) => {
          if (isCancelled(error)) setDone('Upload cancelled.');
        },
      },
    );
  };

  const percent = upload.progress && upload.progress.total > 0 ? (100 * upload.progress.loaded) / upload.progress.total : 0;

  return (
    <Stack gap="sm">
      <Group justify="space-between" wrap="wrap">
        <Box component="nav" aria-label="Folder">
        <Breadcrumbs>
          <Anchor component="button" type="button" onClick={() => setDir('')}>
            workspace
          </Anchor>
          {segments.map((segment, index) => (
            <Anchor
              key={segments.slice(0, index + 1).join('/')}
              component="button"
              type="button"
              onClick={() => setDir(segments.slice(0, index + 1).join('/'))}
            >
              {segment}
            </Anchor>
          ))}
        </Breadcrumbs>
        </Box>
        <Group gap="xs">
          <Button
            variant="default"
            size="xs"
            leftSection={<IconArrowUp size={14} />}
            disabled={!dir}
            onClick={() => setDir(parentPath(dir))}
          >
            Up
          </Button>
          <Button
            variant="default"
            size="xs"
            leftSection={<IconRefresh size={14} />}
            loading={listing.isFetching}
            onClick={() => listing.refetch()}
          >
            Refresh files
          </Button>
          <FileButton onChange={startUpload} multiple>
            {(props) => (
              <Button {...props} size="xs" leftSection={<IconUpload size={14} />} loading={upload.isPending}>
                Upload files
              </Button>
            )}
          </FileButton>
        </Group>
      </Group>

      {upload.progress && (
        <Group gap="sm" wrap="nowrap">
          <Text size="sm" style={{ whiteSpace: 'nowrap' }}>
            Uploading {upload.progress.file}: {Math.round(percent)}%
          </Text>
          <Progress value={percent} style={{ flex: 1 }} aria-label={`Uploading ${upload.progress.file}`} />
          <Button variant="subtle" size="xs" color="red" onClick={upload.cancel}>
            Cancel upload
          </Button>
        </Group>
      )}
      <QueryError error={isCancelled(upload.error) ? null : upload.error} title="Upload failed" />
      <QueryError error={remove.error} title="Could not delete" />
      <QueryError error={listing.error} title="Could not list the workspace" />

      <Table.ScrollContainer minWidth={480}>
        <Table highlightOnHover aria-label="Workspace files" data-testid="files-table">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Name</Table.Th>
              <Table.Th>Size</Table.Th>
              <Table.Th>Modified</Table.Th>
              <Table.Th>Actions</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {entries.map((entry) => (
              <Table.Tr key={entry.path}>
                <Table.Td>
                  <Group gap={6} wrap="nowrap">
                    <EntryIcon entry={entry} />
                    {entry.type === 'dir' ? (
                      <UnstyledButton onClick={() => setDir(entry.path)} title={`Open ${entry.path}`}>
                        <Text span fw={500} c="blue">
                          {entry.name}
                        </Text>
                      </UnstyledButton>
                    ) : (
                      <Text span>{entry.name}</Text>
                    )}
                  </Group>
                </Table.Td>
                <Table.Td>{entry.type === 'file' ? formatBytes(entry.size) : '—'}</Table.Td>
                <Table.Td>
                  <time dateTime={new Date(entry.modified_at * 1000).toISOString()}>
                    {new Date(entry.modified_at * 1000).toLocaleString()}
                  </time>
                </Table.Td>
                <Table.Td>
                  <Group gap={4} wrap="nowrap">
                    {entry.type === 'file' && (
                      <Tooltip label="Download">
                        <ActionIcon
                          component="a"
                          href={workspaceFilePath(workloadId, entry.path)}
                          download={entry.name}
                          variant="subtle"
                          aria-label={`Download ${entry.name}`}
                        >
                          <IconDownload size={16} />
                        </ActionIcon>
                      </Tooltip>
                    )}
                    <Tooltip label="Delete">
                      <ActionIcon
                        variant="subtle"
                        color="red"
                        aria-label={`Delete ${entry.name}`}
                        onClick={() => confirmDelete(entry)}
                        loading={remove.isPending && remove.variables === entry.path}
                      >
                        <IconTrash size={16} />
                      </ActionIcon>
                    </Tooltip>
                  </Group>
                </Table.Td>
              </Table.Tr>
            ))}
            {entries.length === 0 && (
              <Table.Tr>
                <Table.Td colSpan={4}>
                  <Text c="dimmed" size="sm">
                    {listing.isPending && enabled ? 'Loading…' : 'No files here.'}
                  </Text>
                </Table.Td>
              </Table.Tr>
            )}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
      <Text size="sm" role="status" aria-live="polite">
        {done}
      </Text>
      {listing.data && (
        <Text size="sm" c="dimmed">
          {listing.data.count} entr{listing.data.count === 1 ? 'y' : 'ies'} · {formatBytes(listing.data.used_bytes)} used
          {listing.data.quota_bytes > 0 ? ` of ${formatBytes(listing.data.quota_bytes)}` : ''}
        </Text>
      )}
    </Stack>
  );
}
