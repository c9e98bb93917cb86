/**
 * The workload detail page's Terminal and Files tabs. The terminal (xterm.js, a third of
 * the bundle) is its own chunk, fetched when the tab first opens.
 */
import { Loader } from '@mantine/core';
import { Suspense, lazy } from 'react';
import type { TerminalPanelProps } from './TerminalPanel';

export { FilesPanel, type FilesPanelProps } from './FilesPanel';
export type { TerminalPanelProps } from './TerminalPanel';

const LazyTerminalPanel = lazy(() => import('./TerminalPanel').then((module) => ({ default: module.TerminalPanel })));

export function TerminalPanel(props: TerminalPanelProps) {
  return (
    <Suspense fallback={<Loader size="sm" aria-label="Loading the terminal" />}>
      <LazyTerminalPanel {...props} />
    </Suspense>
  );
}
