/**
 * Notifications and confirmations with labelled close buttons (Mantine's have no
 * accessible name of their own; axe counts that as critical).
 */
import { Text } from '@mantine/core';
import { modals } from '@mantine/modals';
import { notifications } from '@mantine/notifications';
import { ApiError } from '../api/client';

/** What to tell a person about a failure: the API's problem detail when there is one. */
export function problemText(error: unknown): string {
  if (error instanceof ApiError) return error.detail || error.title;
  return error instanceof Error ? error.message : String(error);
}

export function notifyDone(message: string) {
  notifications.show({ color: 'green', message, closeButtonProps: { 'aria-label': 'Dismiss' } });
}

export function notifyFailed(title: string, error: unknown) {
  notifications.show({
    color: 'red',
    title,
    message: problemText(error),
    closeButtonProps: { 'aria-label': 'Dismiss' },
  });
}

/** "Delete X?" with a red confirm button. */
export function confirmDanger({
  title,
  text,
  confirm,
  onConfirm,
}: {
  title: string;
  text: string;
  confirm: string;
  onConfirm: () => void;
}) {
  modals.openConfirmModal({
    title,
    children: <Text size="sm">{text}</Text>,
    labels: { confirm, cancel: 'Cancel' },
    confirmProps: { color: 'red' },
    closeButtonProps: { 'aria-label': 'Close' },
    onConfirm,
  });
}

/** Props every Modal of these pages takes: a named close button. */
export const MODAL_CLOSE = { 'aria-label': 'Close' } as const;

/** Alert styles whose title keeps AA contrast on the light green/red background. */
export const READABLE_ALERT = { title: { color: 'var(--mantine-color-text)' } } as const;
