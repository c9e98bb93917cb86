/** Toasts for the outcome of an action (mutations); queries show QueryError in place. */
import { notifications } from '@mantine/notifications';
import { IconCheck, IconX } from '@tabler/icons-react';
import { ApiError } from '../api/client';

// Mantine's close button has no accessible name of its own (axe: critical button-name).
const CLOSE = { 'aria-label': 'Dismiss' } as const;

export function notifySuccess(message: string, title?: string): void {
  notifications.show({ color: 'green', icon: <IconCheck size={16} />, title, message, closeButtonProps: CLOSE });
}

/** The API's own words (the problem's detail) when it refused; stays until closed. */
export function notifyError(error: unknown, title = 'That did not work'): void {
  const message =
    error instanceof ApiError ? error.detail || error.title : error instanceof Error ? error.message : String(error);
  notifications.show({
    color: 'red',
    icon: <IconX size={16} />,
    title,
    message,
    autoClose: false,
    closeButtonProps: CLOSE,
  });
}
