/** "Are you sure?" before a destructive action (stop, delete, drain...). */
import { Text } from '@mantine/core';
import { modals } from '@mantine/modals';
import type { ReactNode } from 'react';

interface ConfirmOptions {
  title: string;
  message: ReactNode;
  /** The button's label: say what happens ("Delete workload"), not "OK". */
  confirmLabel: string;
  danger?: boolean;
  onConfirm: () => void;
}

export function confirmAction({ title, message, confirmLabel, danger = true, onConfirm }: ConfirmOptions): void {
  modals.openConfirmModal({
    title,
    children: typeof message === 'string' ? <Text size="sm">{message}</Text> : message,
    labels: { confirm: confirmLabel, cancel: 'Cancel' },
    confirmProps: { color: danger ? 'red' : undefined },
    onConfirm,
  });
}
