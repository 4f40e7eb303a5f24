/**
 * The custom LSP protocol (`infinityMatrix/*` methods) as the VS Code client sees it.
 *
 * The Rust side, `server/src/lsp/ext.rs`, is authoritative; docs/lsp-extensions.md describes
 * both. This module has no `vscode` import so that the model and its tests run in plain node.
 * LSP base types are declared structurally (they match `vscode-languageserver-protocol`).
 */

// ---- LSP base types (structural) ---------------------------------------------------------

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

export interface TextDocumentIdentifier {
  uri: string;
}

/** An LSP Diagnostic, as far as this client uses it (passed through untouched). */
export interface Diagnostic {
  range: Range;
  message: string;
  severity?: number;
  source?: string;
  code?: number | string;
  [key: string]: unknown;
}

// ---- method and command names ----------------------------------------------------------------

export const Methods = {
  /** request: context snapshot for a cursor or selection */
  context: 'infinityMatrix/context',
  /** request: agents (resolved definitions) and the default agent */
  agents: 'infinityMatrix/agents',
  /** request: recent tasks */
  tasks: 'infinityMatrix/tasks',
  /** request: one task in full (text, edit, diagnostics, approval) */
  task: 'infinityMatrix/task',
  /** request: audit log entries */
  audit: 'infinityMatrix/audit',
  /** request: metrics snapshot */
  metrics: 'infinityMatrix/metrics',
  /** request: a secret (API key) from the client's secret storage */
  setSecret: 'infinityMatrix/setSecret',
  /** request: run `doctor`'s checks on one provider (reachable, authorised, model present) */
  testProvider: 'infinityMatrix/testProvider',
  /** notification client → server: the editor's diagnostics for a document changed */
  diagnosticsChanged: 'infinityMatrix/diagnosticsChanged',
  /** notification server → client: a task changed state, or streamed text */
  taskEvent: 'infinityMatrix/taskEvent',
  /** notification server → client: agents, tasks and provider health (coalesced) */
  agentStatus: 'infinityMatrix/agentStatus',
} as const;

/** workspace/executeCommand commands of the server. Each answers `{taskId}` at once. */
export const ServerCommands = {
  startAgent: 'infinity-matrix.startAgent',
  stopAgent: 'infinity-matrix.stopAgent',
  executePrompt: 'infinity-matrix.executePrompt',
  cancelTask: 'infinity-matrix.cancelTask',
  approve: 'infinity-matrix.approve',
  proposeEdit: 'infinity-matrix.proposeEdit',
} as const;

export type ServerCommand = (typeof ServerCommands)[keyof typeof ServerCommands];

/**
 * `experimental` client capabilities this client declares: it handles
 * `infinityMatrix/taskEvent` itself, so the server does not also open finished answers with
 * window/showDocument or window/showMessage (what it does for stock clients), and it prompts
 * for approvals itself (the diff view with Apply / Reject), so the server sends no
 * window/showMessageRequest for them.
 */
export const EXPERIMENTAL_CAPABILITIES = { infinityMatrix: { taskEvents: true, approvalPrompt: true } } as const;

/** The settings section the server pulls with workspace/configuration. */
export const CONFIG_SECTION = 'infinityMatrix';

/**
 * Keys of the `infinityMatrix` settings section that belong to the server's configuration
 * (docs/config.schema.json). Everything else under `infinityMatrix.*` (server.path, log.level,
 * trace.server, ui.*) is the extension's own and never reaches the server, whose
 * configuration parser rejects unknown keys.
 */
export const SERVER_CONFIG_KEYS = ['providers', 'agents', 'defaults', 'policy', 'audit', 'metrics'] as const;

/** Keeps only the server's keys of an `infinityMatrix` settings object. */
export function serverSettings(section: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (section === null || typeof section !== 'object' || Array.isArray(section)) {
    return out;
  }
  const obj = section as Record<string, unknown>;
  for (const key of SERVER_CONFIG_KEYS) {
    if (obj[key] !== undefined) {
      out[key] = obj[key];
    }
  }
  return out;
}

/**
 * `initializationOptions` the server reads (server/src/lsp/ext.rs `InitializationOptions`,
 * docs/lsp-extensions.md). The extension fills the index settings; its providers and agents
 * reach the server through workspace/configuration instead.
 */
export interface InitializationOptions {
  maxFileSizeBytes?: number;
  excludeDirs?: string[];
  treeCacheSize?: number;
  maxParseBytes?: number;
}

/** The extension's settings (under `infinityMatrix.index.`) that become initializationOptions. */
export const INDEX_SETTINGS = ['maxFileSizeBytes', 'excludeDirs', 'treeCacheSize', 'maxParseBytes'] as const;

/**
 * The `infinityMatrix.index.*` settings as initializationOptions. A value of the wrong type
 * or out of range is left out, so the server's default applies.
 */
export function initializationOptions(get: (key: (typeof INDEX_SETTINGS)[number]) => unknown): InitializationOptions {
  const out: InitializationOptions = {};
  const count = (v: unknown, min: number): number | undefined =>
    typeof v === 'number' && Number.isInteger(v) && v >= min ? v : undefined;
  const max = count(get('maxFileSizeBytes'), 1);
  if (max !== undefined) out.maxFileSizeBytes = max;
  const dirs = get('excludeDirs');
  if (Array.isArray(dirs)) {
    const names = dirs.filter((d): d is string => typeof d === 'string' && d.trim() !== '');
    if (names.length > 0) out.excludeDirs = names;
  }
  const trees = count(get('treeCacheSize'), 1);
  if (trees !== undefined) out.treeCacheSize = trees;
  const parse = count(get('maxParseBytes'), 1024);
  if (parse !== undefined) out.maxParseBytes = parse;
  return out;
}

// ---- context ------------------------------------------------------------------------------------

export interface ContextParams {
  textDocument: TextDocumentIdentifier;
  position: Position;
  range?: Range;
  budgetTokens?: number;
  diagnostics?: Diagnostic[];
}

export type ContextItemKind =
  | 'selection'
  | 'enclosingSymbol'
  | 'imports'
  | 'definition'
  | 'diagnostics'
  | 'outline'
  | 'recentEdit';

export interface ContextItem {
  /** One of {@link ContextItemKind} (kept open for kinds added later). */
  kind: string;
  uri: string;
  range: Range;
  text: string;
  tokens: number;
  reason: string;
  /**
   * Runs of lines (0-based, first and last inclusive) of `range` that `text` leaves out, each
   * replaced there by one marker line; absent when none. Every other line of `text` is the
   * file's line at its number (counting from `range.start.line`).
   */
  elided?: [number, number][];
}

export interface ContextResult {
  items: ContextItem[];
  totalTokens: number;
  budgetTokens: number;
  rendered: string;
  /** False while the workspace's first index is still being built. */
  indexComplete: boolean;
}

// ---- agents and tasks -----------------------------------------------------------------------

export type TaskState = 'queued' | 'running' | 'awaiting_approval' | 'succeeded' | 'failed' | 'cancelled';
export type OutputMode = 'answer' | 'edit' | 'diagnostics';
export type Approval = 'auto' | 'alert' | 'manual';
export type Trigger = 'command' | 'codeAction' | 'onSave' | 'onDiagnostics';
export type CircuitState = 'closed' | 'open' | 'half_open' | 'misconfigured';

export const TERMINAL_STATES: readonly TaskState[] = ['succeeded', 'failed', 'cancelled'];

export function isTerminal(state: TaskState): boolean {
  return TERMINAL_STATES.includes(state);
}

export interface TaskInfo {
  id: string;
  agent: string;
  state: TaskState;
  output: OutputMode;
  uri: string | null;
  priority: number;
  createdAtMs: number;
  startedAtMs: number | null;
  finishedAtMs: number | null;
  provider: string | null;
  model: string | null;
  attempts: number;
  retries: number;
  error: string | null;
  /** Prompt and reply tokens of the last provider call, when the provider reported them. */
  tokensIn?: number | null;
  tokensOut?: number | null;
  /** The task this one follows up (a conversation's earlier turn). */
  parentTaskId?: string;
}

export interface EditProposal {
  uri: string;
  range: Range;
  newText: string;
  originalText: string;
  linesChanged: number;
  version: number | null;
}

export interface AgentDiagnostic {
  line: number;
  endLine: number;
  severity: number;
  message: string;
}

/** `infinityMatrix/task` result. */
export interface TaskDetail extends TaskInfo {
  text: string;
  /** What the user asked (empty for an agent run on a selection). */
  prompt?: string;
  /** The code the task is about (absent for a task of an earlier server). */
  target?: { uri: string; range: Range } | null;
  /** The context items sent with it, without their text. */
  context?: { kind: string; uri: string; range: Range; tokens: number; reason: string }[];
  edit: EditProposal | null;
  diagnostics: AgentDiagnostic[];
  approval: string | null;
}

export interface TaskParams {
  taskId: string;
}

/** One agent in `infinityMatrix/agentStatus`. */
export interface AgentStatus {
  name: string;
  description: string;
  /** idle | running | enabled (a background agent waiting for its trigger) */
  state: string;
  background: boolean;
  enabled: boolean;
  running: number;
  queued: number;
  output: OutputMode;
  providers: string[];
}

/**
 * What is known of a provider: `unknown` (never contacted), `healthy` (its last call
 * succeeded), `unreachable` (its last call could not connect or timed out), `failing` (its last
 * call failed otherwise: auth, server error), `circuit_open`, `half_open`, `misconfigured`.
 */
export const HEALTH_STATES = ['unknown', 'healthy', 'unreachable', 'failing', 'circuit_open', 'half_open', 'misconfigured'] as const;
export type ProviderHealth = (typeof HEALTH_STATES)[number];

export interface ProviderStatus {
  name: string;
  kind: string;
  model: string;
  /** One of {@link CircuitState}. */
  circuit: string;
  consecutiveFailures: number;
  /** The reason of the last failure (or the configuration error). */
  error: string | null;
  /** Sent by servers that track it; see {@link providerHealth} for older ones. */
  health?: ProviderHealth;
}

/** A provider's health, derived from the circuit where the server does not send it. */
export function providerHealth(p: ProviderStatus): ProviderHealth {
  if (p.circuit === 'misconfigured') return 'misconfigured';
  if (p.circuit === 'open') return 'circuit_open';
  if (p.circuit === 'half_open') return 'half_open';
  if (p.health) return p.health;
  return p.consecutiveFailures > 0 ? 'failing' : 'unknown';
}

/** `infinityMatrix/agentStatus` params. */
export interface StatusSnapshot {
  agents: AgentStatus[];
  tasks: TaskInfo[];
  providers: ProviderStatus[];
  running: number;
  queued: number;
}

/** A resolved agent definition (`infinityMatrix/agents`). */
export interface AgentDef {
  name: string;
  description: string;
  providers: string[];
  model: string | null;
  systemPrompt: string;
  prompt: string;
  output: OutputMode;
  approval: Approval;
  triggers: Trigger[];
  concurrency: number;
  priority: number;
  ratePerMinute: number;
  debounceMs: number;
  contextBudgetTokens: number;
  builtin: boolean;
}

export interface AgentsResult {
  agents: AgentDef[];
  defaultAgent: string;
}

/** `infinityMatrix/taskEvent` params. */
export type TaskEvent =
  | { type: 'state'; task: TaskInfo }
  | { type: 'chunk'; taskId: string; seq: number; text: string }
  | { type: 'reset'; taskId: string; seq: number; reason: string };

// ---- command arguments -------------------------------------------------------------------

export interface StartAgentArgs {
  agent: string;
  textDocument?: TextDocumentIdentifier;
  range?: Range;
  position?: Position;
  diagnostics?: Diagnostic[];
  prompt?: string;
}

export interface ExecutePromptArgs {
  prompt: string;
  agent?: string;
  textDocument: TextDocumentIdentifier;
  range?: Range;
  position?: Position;
  diagnostics?: Diagnostic[];
}

export interface StopAgentArgs {
  agent: string;
}

export interface CancelTaskArgs {
  taskId: string;
}

export interface ApproveArgs {
  taskId: string;
  accept: boolean;
}

/** *Apply as edit*: a code block of task `taskId`'s answer as the replacement of its target. */
export interface ProposeEditArgs {
  taskId: string;
  newText: string;
}

export interface CommandResult {
  taskId: string | null;
}

// ---- audit, secrets, diagnostics ----------------------------------------------------------------

export type AuditKind = 'task' | 'transition' | 'attempt' | 'approval' | 'edit';

export interface AuditParams {
  since?: number;
  taskId?: string;
  agent?: string;
  kind?: AuditKind;
  limit?: number;
}

export interface AuditEntry {
  at: number;
  /** One of {@link AuditKind}. */
  kind: string;
  taskId: string;
  agent?: string;
  summary: string;
  details: unknown;
}

export interface AuditResult {
  entries: AuditEntry[];
}

/** `infinityMatrix/testProvider` params. */
export interface TestProviderParams {
  name: string;
}

/** `infinityMatrix/testProvider` result: what `infinity-matrix doctor` prints for the provider. */
export interface TestProviderResult {
  ok: boolean;
  /** One line: "reachable, authorised, model smollm2 present (12 ms)" or the failure. */
  summary: string;
  health: ProviderHealth;
}

export interface SetSecretParams {
  /** The name providers refer to in `api_key_env`. */
  name: string;
  value: string;
}

export interface DiagnosticsChangedParams {
  textDocument: TextDocumentIdentifier;
  diagnostics: Diagnostic[];
}

// ---- runtime checks for data coming off the wire -----------------------------------------------

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const STATES: readonly string[] = ['queued', 'running', 'awaiting_approval', 'succeeded', 'failed', 'cancelled'];

export function isTaskInfo(v: unknown): v is TaskInfo {
  return (
    isObject(v) &&
    typeof v.id === 'string' &&
    typeof v.agent === 'string' &&
    typeof v.state === 'string' &&
    STATES.includes(v.state) &&
    typeof v.createdAtMs === 'number'
  );
}

/** Validates an `infinityMatrix/taskEvent` payload; `undefined` when it is not one. */
export function parseTaskEvent(v: unknown): TaskEvent | undefined {
  if (!isObject(v)) {
    return undefined;
  }
  switch (v.type) {
    case 'state':
      return isTaskInfo(v.task) ? { type: 'state', task: v.task } : undefined;
    case 'chunk':
      return typeof v.taskId === 'string' && typeof v.seq === 'number' && typeof v.text === 'string'
        ? { type: 'chunk', taskId: v.taskId, seq: v.seq, text: v.text }
        : undefined;
    case 'reset':
      return typeof v.taskId === 'string' && typeof v.seq === 'number'
        ? { type: 'reset', taskId: v.taskId, seq: v.seq, reason: typeof v.reason === 'string' ? v.reason : '' }
        : undefined;
    default:
      return undefined;
  }
}

/** Validates an `infinityMatrix/agentStatus` payload, dropping malformed entries. */
export function parseStatus(v: unknown): StatusSnapshot | undefined {
  if (!isObject(v)) {
    return undefined;
  }
  const agents = Array.isArray(v.agents)
    ? v.agents.filter((a): a is AgentStatus => isObject(a) && typeof a.name === 'string')
    : [];
  const tasks = Array.isArray(v.tasks) ? v.tasks.filter(isTaskInfo) : [];
  const providers = Array.isArray(v.providers)
    ? v.providers.filter((p): p is ProviderStatus => isObject(p) && typeof p.name === 'string')
    : [];
  return {
    agents: agents.map((a) => ({
      ...a,
      description: typeof a.description === 'string' ? a.description : '',
      running: typeof a.running === 'number' ? a.running : 0,
      queued: typeof a.queued === 'number' ? a.queued : 0,
      providers: Array.isArray(a.providers) ? a.providers : [],
    })),
    tasks,
    providers: providers.map((p) => ({
      ...p,
      kind: typeof p.kind === 'string' ? p.kind : '',
      model: typeof p.model === 'string' ? p.model : '',
      circuit: typeof p.circuit === 'string' ? p.circuit : 'closed',
      consecutiveFailures: typeof p.consecutiveFailures === 'number' ? p.consecutiveFailures : 0,
      error: typeof p.error === 'string' ? p.error : null,
      health: (HEALTH_STATES as readonly unknown[]).includes(p.health) ? p.health : undefined,
    })),
    running: typeof v.running === 'number' ? v.running : 0,
    queued: typeof v.queued === 'number' ? v.queued : 0,
  };
}
