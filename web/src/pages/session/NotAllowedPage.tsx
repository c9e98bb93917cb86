import { Button, Stack, Text } from '@mantine/core';
import { Link } from 'react-router-dom';
import { PageHeader } from '../../components/PageHeader';

export function NotAllowedPage() {
  return (
    <Stack align="flex-start" data-testid="not-allowed">
      <PageHeader title="Not allowed" />
      <Text>Your role is not allowed to see this page.</Text>
      <Button component={Link} to="/workloads" variant="light">
        Go to my workloads
      </Button>
    </Stack>
  );
}
