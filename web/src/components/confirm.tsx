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
    closeButtonProps: { 'aria-label': 'Close' }, // Mantine's has no name (axe: button-name)
    title,
    children: typeof message === 'string' ? <Text size="sm">{message}</Text> : message,
    labels: { confirm: confirmLabel, cancel: 'Cancel' },
    // Red 9: white text on the theme's red 8 is just under 4.5:1.
    confirmProps: { color: danger ? 'red.9' : undefined },
    onConfirm,
  });
}
