import { Group, Title } from '@mantine/core';
import { useDocumentTitle } from '@mantine/hooks';
import type { ReactNode } from 'react';

/** The page's h1 and the document title; `actions` on the right. */
export function PageHeader({ title, actions }: { title: string; actions?: ReactNode }) {
  useDocumentTitle(`${title} · gpuyard`);
  return (
    <Group justify="space-between" mb="md">
      <Title order={2} component="h1">
        {title}
      </Title>
      {actions}
    </Group>
  );
}
