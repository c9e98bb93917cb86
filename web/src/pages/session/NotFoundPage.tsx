import { Button, Stack, Text } from '@mantine/core';
import { Link } from 'react-router-dom';
import { PageHeader } from '../../components/PageHeader';

export function NotFoundPage() {
  return (
    <Stack align="flex-start">
      <PageHeader title="Page not found" />
      <Text>There is no page at this address.</Text>
      <Button component={Link} to="/" variant="light">
        Go home
      </Button>
    </Stack>
  );
}
