import { Text } from '@mantine/core';
import { PageHeader } from '../components/PageHeader';

/** A page that another change will build; the route and its role check are real. */
export function PlaceholderPage({ title }: { title: string }) {
  return (
    <>
      <PageHeader title={title} />
      <Text>This page is coming soon.</Text>
    </>
  );
}
