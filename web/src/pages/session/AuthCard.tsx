import { Center, Group, Paper, Stack, Title } from '@mantine/core';
import { useDocumentTitle } from '@mantine/hooks';
import type { ReactNode } from 'react';
import { ThemeToggle } from '../../layout/ThemeToggle';

/** The frame of the login and registration pages (no app shell: nobody is logged in). */
export function AuthCard({ title, children }: { title: string; children: ReactNode }) {
  useDocumentTitle(`${title} · gpuyard`);
  return (
    <Center mih="100vh" p="md" component="main">
      <Stack w={380} gap="md">
        <Group justify="space-between">
          <Title order={1} size="h2">
            gpuyard
          </Title>
          <ThemeToggle />
        </Group>
        <Paper withBorder shadow="sm" p="lg" radius="md">
          <Title order={2} size="h3" mb="md">
            {title}
          </Title>
          {children}
        </Paper>
      </Stack>
    </Center>
  );
}
