/**
 * A shell in a workload's container: xterm.js over the exec WebSocket
 * (/api/v1/workloads/{id}/exec, protocol in docs/agent.md, "Exec protocol"), or on a
 * server's own host over SSH (/api/v1/servers/{id}/terminal, the same protocol).
 *
 * Binary frames are keystrokes one way and output the other; text frames are JSON control
 * messages (resize from here; exit or error from the server). The socket authenticates
 * with the session cookie; the server checks that the page's Origin is its own.
 */
import '@xterm/xterm/css/xterm.css';
import { Alert, Badge, Box, Button, Group, Text, useComputedColorScheme } from '@mantine/core';
import { FitAddon } from '@xterm/addon-fit';
import { Terminal, type ITheme } from '@xterm/xterm';
import { useEffect, useRef, useState } from 'react';

type Phase = 'connecting' | 'open' | 'closed';

interface ConnectionState {
  phase: Phase;
  /** Why the session ended (exit code, refusal, lost connection). */
  message?: string;
  /** Whether it ended on a refusal or an error rather than the shell exiting. */
  failed?: boolean;
}

const LIGHT: ITheme = {
  background: '#ffffff',
  foreground: '#1a1b1e',
  cursor: '#1a1b1e',
  selectionBackground: '#a5d8ff',
  black: '#1a1b1e',
  white: '#868e96',
};
const DARK: ITheme = {
  background: '#1a1b1e',
  foreground: '#e9ecef',
  cursor: '#e9ecef',
  selectionBackground: '#1864ab',
};

/** The exec socket's URL on this server (ws: or wss: like the page). */
export function execSocketUrl(workloadId: string, command: readonly string[] = []): string {
  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  const query = command.map((part) => `cmd=${encodeURIComponent(part)}`).join('&');
  return `${scheme}//${window.location.host}/api/v1/workloads/${encodeURIComponent(workloadId)}/exec${
    query ? `?${query}` : ''
  }`;
}

/** The host terminal's socket URL: a shell on the server's own host over SSH. */
export function serverTerminalUrl(serverId: string, command: readonly string[] = []): string {
  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  const query = command.map((part) => `cmd=${encodeURIComponent(part)}`).join('&');
  return `${scheme}//${window.location.host}/api/v1/servers/${encodeURIComponent(serverId)}/terminal${
    query ? `?${query}` : ''
  }`;
}

/** What a close without an exit or error frame means (codes of RFC 6455 and the server). */
function closeMessage(event: CloseEvent, opened: boolean, onHost: boolean): ConnectionState {
  if (!opened) {
    return {
      phase: 'closed',
      failed: true,
      message: onHost
        ? 'The server refused the terminal: the session may have expired, or your role may not open a shell on a host.'
        : 'The server refused the terminal: the session may have expired, or you may not change this workload.',
    };
  }
  if (event.code === 1000) return { phase: 'closed', message: 'The session ended.' };
  const reason = event.reason ? `: ${event.reason}` : '';
  return { phase: 'closed', failed: true, message: `The connection closed (code ${event.code})${reason}.` };
}

export interface TerminalPanelProps {
  /** The workload whose replica 0 gets the shell (or, with serverId, none). */
  workloadId?: string;
  /** A shell on this server's own host over SSH instead of in a workload. */
  serverId?: string;
  /** The command to run instead of the container's shell. */
  command?: readonly string[];
  /** Whether to connect at all (default true: a workload that cannot have a shell gets
   *  the server's reason, shown in the panel). */
  enabled?: boolean;
}

export function TerminalPanel({ workloadId, serverId, command, enabled = true }: TerminalPanelProps) {
  const host = useRef<HTMLDivElement>(null);
  const terminal = useRef<Terminal | null>(null);
  const [state, setState] = useState<ConnectionState>({ phase: 'connecting' });
  const [attempt, setAttempt] = useState(0);
  const colorScheme = useComputedColorScheme('light');
  const commandKey = JSON.stringify(command ?? []);

  useEffect(() => {
    if (terminal.current) terminal.current.options.theme = colorScheme === 'dark' ? DARK : LIGHT;
  }, [colorScheme]);

  useEffect(() => {
    const element = host.current;
    if (!element || !enabled) return undefined;
    const term = new Terminal({
      cursorBlink: true,
      convertEol: false,
      fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace',
      fontSize: 14,
      scrollback: 5000,
      // Rows mirrored into an off-screen live region: screen readers (and tests) read them.
      screenReaderMode: true,
      theme: colorScheme === 'dark' ? DARK : LIGHT,
    });
    // Tab belongs to the shell (completion); Shift+Tab is left to the browser, which moves
    // the focus out (the keyboard is never trapped here), and sends the shell nothing.
    term.attachCustomKeyEventHandler((event) => !(event.key === 'Tab' && event.shiftKey));
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(element);
    terminal.current = term;
    fitQuietly(fit);

    setState({ phase: 'connecting' });
    const parts = JSON.parse(commandKey) as string[];
    const socket = new WebSocket(
      serverId !== undefined ? serverTerminalUrl(serverId, parts) : execSocketUrl(workloadId ?? '', parts),
    );
    socket.binaryType = 'arraybuffer';
    const encoder = new TextEncoder();
    let opened = false;
    let ended = false;

    const sendResize = () => {
      if (socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ type: 'resize', rows: term.rows, cols: term.cols }));
      }
    };
    socket.onopen = () => {
      opened = true;
      setState({ phase: 'open' });
      fitQuietly(fit);
      sendResize();
      term.focus();
    };
    socket.onmessage = (event: MessageEvent<ArrayBuffer | string>) => {
      if (typeof event.data !== 'string') {
        term.write(new Uint8Array(event.data));
        return;
      }
      const control = parseControl(event.data);
      if (control?.type === 'exit') {
        ended = true;
        setState({ phase: 'closed', message: `The shell exited with code ${String(control.exit_code)}.` });
      } else if (control?.type === 'error') {
        ended = true;
        const status = typeof control.status === 'number' ? ` (${control.status})` : '';
        setState({ phase: 'closed', failed: true, message: `${String(control.detail ?? 'The server refused the terminal')}${status}` });
      }
    };
    socket.onclose = (event) => {
      if (!ended) setState(closeMessage(event, opened, serverId !== undefined));
      ended = true;
    };
    const input = term.onData((data) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data));
    });
    const binary = term.onBinary((data) => {
      if (socket.readyState === WebSocket.OPEN) {
        socket.send(Uint8Array.from(data, (char) => char.charCodeAt(0) & 0xff));
      }
    });
    const resized = term.onResize(sendResize);
    // The panel's size follows the window and the layout (tabs, navbar); refit on both.
    const observer = new ResizeObserver(() => fitQuietly(fit));
    observer.observe(element);

    return () => {
      observer.disconnect();
      input.dispose();
      binary.dispose();
      resized.dispose();
      ended = true;
      socket.onclose = null;
      socket.onmessage = null;
      if (socket.readyState === WebSocket.CONNECTING) {
        // Closing a socket still connecting logs an error in the console; close on open.
        socket.onopen = () => socket.close(1000);
      } else {
        socket.close(1000);
      }
      terminal.current = null;
      term.dispose();
    };
    // colorScheme is applied by the effect above without reconnecting.
  }, [workloadId, serverId, commandKey, enabled, attempt]);

  if (!enabled) {
    return (
      <Text c="dimmed" size="sm">
        The terminal opens while the workload is running.
      </Text>
    );
  }

  return (
    <Box>
      <Group justify="space-between" mb="xs">
        <Group gap="xs">
          <Badge
            variant="dot"
            color={state.phase === 'open' ? 'green' : state.phase === 'connecting' ? 'blue' : state.failed ? 'red' : 'gray'}
            role="status"
            aria-live="polite"
            data-testid="terminal-status"
          >
            {state.phase === 'open' ? 'Connected' : state.phase === 'connecting' ? 'Connecting…' : 'Disconnected'}
          </Badge>
        </Group>
        <Text size="xs" c="dimmed">
          Shift+Tab leaves the terminal.
        </Text>
        <Button
          size="xs"
          variant="default"
          disabled={state.phase !== 'closed'}
          onClick={() => setAttempt((n) => n + 1)}
        >
          Reconnect
        </Button>
      </Group>
      {state.phase === 'closed' && state.message && state.failed && (
        <Alert color="red" mb="xs" title="No terminal">
          {state.message}
        </Alert>
      )}
      {state.phase === 'closed' && state.message && !state.failed && (
        <Text size="sm" c="dimmed" mb="xs" role="status">
          {state.message}
        </Text>
      )}
      <Box
        ref={host}
        data-testid="terminal"
        aria-label="Terminal"
        role="group"
        h={420}
        p={6}
        style={{
          border: '1px solid var(--mantine-color-default-border)',
          borderRadius: 'var(--mantine-radius-sm)',
          background: colorScheme === 'dark' ? DARK.background : LIGHT.background,
          overflow: 'hidden',
        }}
        onClick={() => terminal.current?.focus()}
      />
    </Box>
  );
}

function fitQuietly(fit: FitAddon): void {
  try {
    fit.fit();
  } catch {
    // Not laid out yet (a hidden tab): the next resize fits it.
  }
}

function parseControl(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
