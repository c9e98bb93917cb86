/**
 * The API's bounds on a workload request (src/gpuyard/domain/limits.py, resources.py,
 * priority.py), checked in the form before a request is sent. The API checks them again
 * and its answer, naming the field, is shown on the same control.
 */
import type { CurrentUser } from '../../api/types';

export const MAX_CPU_CORES = 4096;
export const MAX_RAM_GB = 65536;
export const MAX_STORAGE_GB = 1048576;
export const MAX_GPUS = 64;
export const MIN_PRIORITY = 1;
export const MAX_PRIORITY = 5;
export const DEFAULT_PRIORITY = 3;
export const MAX_IMAGE_LENGTH = 512;
export const MAX_NAME_LENGTH = 128;
/** services/workloads/submission.py _NAME. */
export const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$/;
/** domain/files_paths.py: an absolute path of printable characters (the API refuses system directories). */
export const FILES_PATH_PATTERN = /^\/[!-~]+$/;
/** domain/files_paths.py DEFAULT_FILES_PATH. */
export const DEFAULT_FILES_PATH = '/workspace';
export const MAX_PORTS = 32;
export const MAX_COMMAND_ARGS = 256;
export const MAX_COMMAND_ARG_LENGTH = 8192;
export const MAX_ENV_ENTRIES = 128;
export const MAX_ENV_NAME_LENGTH = 256;
export const MAX_ENV_VALUE_LENGTH = 16384;
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
export const MAX_DURATION_S = 366 * 24 * 3600;

/** Every priority a caller may ask for (the policy gives every role the whole range). */
export const PRIORITIES = Array.from({ length: MAX_PRIORITY - MIN_PRIORITY + 1 }, (_, i) => MIN_PRIORITY + i);

/**
 * The highest priority `me` may ask for on work billed to `teamId`: their role's cap, and
 * the team's when it has one (no team named: their only team, as the API resolves it).
 */
export function highestPriorityFor(me: CurrentUser | null | undefined, teamId: string | null): number {
  if (!me) return MAX_PRIORITY;
  const team = teamId ? me.teams.find((t) => t.team_id === teamId) : me.teams.length === 1 ? me.teams[0] : undefined;
  const teamCap = team?.max_priority ?? MAX_PRIORITY;
  return Math.min(me.max_priority, teamCap);
}

/** The priority choices up to `highest` (and `keep`, a value the workload already has). */
export function priorityChoices(highest: number, keep?: number): { value: string; label: string }[] {
  return PRIORITIES.filter((p) => p <= highest || p === keep).map((p) => ({ value: String(p), label: priorityLabel(p) }));
}

export function priorityLabel(priority: number): string {
  if (priority === MIN_PRIORITY) return `${priority} (lowest)`;
  if (priority === MAX_PRIORITY) return `${priority} (highest)`;
  if (priority === DEFAULT_PRIORITY) return `${priority} (default)`;
  return String(priority);
}

function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** Integer multiples, forgiving binary float noise (0.1 * 3). */
function isMultiple(value: number, step: number): boolean {
  return Math.abs(Math.round(value / step) * step - value) < 1e-9;
}

export function checkCpu(value: unknown): string | null {
  if (!isNumber(value)) return 'Enter a number of cores';
  if (value < 0) return 'Must not be negative';
  if (value > MAX_CPU_CORES) return `At most ${MAX_CPU_CORES}`;
  if (!isMultiple(value, 0.1)) return 'Must be a multiple of 0.1';
  return null;
}

export function checkGb(value: unknown, maximum: number): string | null {
  if (!isNumber(value)) return 'Enter a number of GB';
  if (value < 0) return 'Must not be negative';
  if (value > maximum) return `At most ${maximum}`;
  return null;
}

/** Which shares of one GPU the server accepts (GET /fleet/overview's gpu_share_min/_step). */
export interface GpuShareRule {
  min: number;
  step: number;
}

/** The server's default rule, used until the overview says otherwise. */
export const DEFAULT_GPU_SHARES: GpuShareRule = { min: 0.05, step: 0.05 };

/** The rule an overview states, or the default while it loads. */
export function shareRuleOf(overview: { gpu_share_min: number; gpu_share_step: number } | undefined): GpuShareRule {
  return overview ? { min: overview.gpu_share_min, step: overview.gpu_share_step } : DEFAULT_GPU_SHARES;
}

function describeShares(rule: GpuShareRule): string {
  const low = Math.ceil(Math.max(rule.min, rule.step) / rule.step - 1e-9) * rule.step;
  const high = Math.floor(0.999 / rule.step + 1e-9) * rule.step;
  const num = (v: number) => String(Number(v.toFixed(3)));
  return `a share ${num(low)}–${num(high)} in steps of ${num(rule.step)}`;
}

export function checkGpu(value: unknown, shares: GpuShareRule = DEFAULT_GPU_SHARES): string | null {
  if (!isNumber(value)) return 'Enter a number of GPUs';
  if (value < 0) return 'Must not be negative';
  if (value > 0 && value < 1) {
    const allowed = value >= shares.min - 1e-9 && isMultiple(value, shares.step) && isMultiple(value, 0.001);
    return allowed ? null : `A GPU share must be ${describeShares(shares)}`;
  }
  if (!Number.isInteger(value)) return `A whole number of GPUs, or ${describeShares(shares)}`;
  if (value > MAX_GPUS) return `At most ${MAX_GPUS}`;
  return null;
}

export const MAX_GPU_MEMORY_GB = 4096;

/** Whether `gpu` asks a share of one GPU (the only request that may reserve GPU memory). */
export function isGpuShare(gpu: unknown): boolean {
  return isNumber(gpu) && gpu > 0 && gpu < 1;
}

/** GB of GPU memory for a share ('' = none); not sent (so not checked) without a share. */
export function checkGpuMemory(value: unknown, gpu: unknown): string | null {
  if (value === '' || !isGpuShare(gpu)) return null;
  if (!isNumber(value)) return 'Enter a number of GB';
  if (value < 0) return 'Must not be negative';
  if (value > MAX_GPU_MEMORY_GB) return `At most ${MAX_GPU_MEMORY_GB}`;
  return null;
}

export function checkPorts(ports: string[]): string | null {
  if (ports.length > MAX_PORTS) return `At most ${MAX_PORTS} ports`;
  for (const port of ports) {
    if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) return `${port}: a port is 1–65535`;
  }
  if (new Set(ports).size !== ports.length) return 'A port is listed twice';
  return null;
}

export function checkEnvName(name: string): string | null {
  if (name.length === 0) return 'Enter a name';
  if (name.length > MAX_ENV_NAME_LENGTH) return `At most ${MAX_ENV_NAME_LENGTH} characters`;
  if (!ENV_NAME_PATTERN.test(name)) return 'Letters, digits, _ . - (not starting with a digit)';
  return null;
}

export function checkDuration(value: unknown): string | null {
  if (value === '' || value === undefined || value === null) return null;
  if (!isNumber(value)) return 'Enter a number of seconds';
  if (value <= 0) return 'Must be more than 0';
  if (value > MAX_DURATION_S) return `At most ${MAX_DURATION_S} (366 days)`;
  return null;
}

/** "2", "0.5", "1.25" with at most three decimals. */
export function amount(value: number): string {
  return String(Math.round(value * 1000) / 1000);
}

/** A command line as arguments: split on spaces; "double" or 'single' quotes keep spaces. */
export function splitCommand(line: string): string[] {
  const args: string[] = [];
  for (const match of line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) args.push(match[1] ?? match[2] ?? match[3]);
  return args;
}

export function checkCommand(line: string): string | null {
  const quotes = (line.match(/"/g)?.length ?? 0) % 2 === 1 || (line.match(/'/g)?.length ?? 0) % 2 === 1;
  if (quotes) return 'A quote is not closed';
  const args = splitCommand(line);
  if (args.length > MAX_COMMAND_ARGS) return `At most ${MAX_COMMAND_ARGS} arguments`;
  if (args.some((arg) => arg.length > MAX_COMMAND_ARG_LENGTH)) return `An argument is at most ${MAX_COMMAND_ARG_LENGTH} characters`;
  return null;
}
