import { Alert } from '@mantine/core';
import { IconAlertTriangle } from '@tabler/icons-react';
import { ApiError } from '../api/client';

/** A failed query or mutation, said plainly (the API's problem detail when there is one). */
export function QueryError({ error, title = 'Something went wrong' }: { error: unknown; title?: string }) {
  if (!error) return null;
  const message =
    error instanceof ApiError ? error.detail || error.title : error instanceof Error ? error.message : String(error);
  return (
    <Alert color="red" icon={<IconAlertTriangle size={16} />} title={title} role="alert">
      {message}
    </Alert>
  );
}
