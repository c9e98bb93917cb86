/** The workload detail page's Terminal and Files tabs. */
export { FilesPanel, type FilesPanelProps } from './FilesPanel';
export { TerminalPanel, type TerminalPanelProps } from './TerminalPanel';
