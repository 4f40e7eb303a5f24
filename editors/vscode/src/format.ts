/**
 * Presentation without `vscode`: tree item texts and icons, the status bar monitor, and the
 * read-only documents (task results, context snapshots, audit log). Icons are codicon ids;
 * colors are theme color ids (tree.ts and statusBar.ts turn them into vscode objects).
 */
import {
  type AgentStatus,
  type AuditEntry,
  type ContextResult,
  isTerminal,
  type ProviderHealth,
  providerHealth,
  type ProviderStatus,
  type TaskInfo,
  type TaskState,
} from './lsp_ext';
import type { Summary, TaskText } from './model';

export interface IconSpec {
  id: string;
  color?: string;
}

export interface ItemView {
  label: string;
  description: string;
  tooltip: string; // markdown
  icon: IconSpec;
  contextValue: string;
}

// ---- small helpers ----------------------------------------------------------------------------

/** "0.4 s", "12 s", "1 m 05 s", "2 h 03 m". */
/** `1 line changed`, `3 lines changed` (the server's line-diff count of an edit). */
export function linesChangedLabel(n: number): string {
  return n === 1 ? '1 line changed' : `${n} lines changed`;
}

export function formatDuration(ms: number): string {
  const safe = Math.max(0, ms);
  if (safe < 10_000) return `${(safe / 1000).toFixed(1)} s`;
  const s = Math.floor(safe / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} m`;
}

/** Time a task has been running (or ran), or waited in the queue. */
export function taskElapsedMs(t: TaskInfo, now: number): number {
  const start = t.startedAtMs ?? t.createdAtMs;
  const end = t.finishedAtMs ?? now;
  return end - start;
}

export function basename(uri: string | null | undefined): string {
  if (!uri) return '';
  const clean = uri.split(/[?#]/)[0] ?? '';
  const last = clean.replace(/\/+$/, '').split('/').pop() ?? '';
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

/** The per-server sequence number of a task id (`<prefix>-<n>`), else the id. */
export function shortTaskId(id: string): string {
  const m = /-(\d+)$/.exec(id);
  return m ? `#${m[1]}` : id;
}

const STATE_LABEL: Record<TaskState, string> = {
  queued: 'queued',
  running: 'running',
  awaiting_approval: 'awaiting approval',
  succeeded: 'succeeded',
  failed: 'failed',
  cancelled: 'cancelled',
};

/**
 * A task's state as people read it: a cancelled task whose edit the user rejected is
 * `rejected` (the server ends it cancelled with the error "edit rejected").
 */
export function taskStateLabel(t: Pick<TaskInfo, 'state' | 'error'>): string {
  if (t.state === 'cancelled' && (t.error ?? '').startsWith('edit rejected')) return 'rejected';
  return stateLabel(t.state);
}

export function stateLabel(state: string): string {
  return (STATE_LABEL as Record<string, string>)[state] ?? state;
}

const STATE_ICON: Record<TaskState, IconSpec> = {
  queued: { id: 'clock' },
  running: { id: 'sync~spin' },
  awaiting_approval: { id: 'diff', color: 'notificationsWarningIcon.foreground' },
  succeeded: { id: 'pass', color: 'testing.iconPassed' },
  failed: { id: 'error', color: 'testing.iconFailed' },
  cancelled: { id: 'circle-slash', color: 'disabledForeground' },
};

function escapeMd(s: string): string {
  return s.replace(/([\\`*_{}[\]()#+\-.!|<>])/g, '\\$1');
}

function providerModel(t: { provider: string | null; model: string | null }): string {
  if (t.provider && t.model) return `${t.provider}/${t.model}`;
  return t.provider ?? t.model ?? '';
}

// ---- tree items -----------------------------------------------------------------------------

export function taskView(t: TaskInfo, now: number): ItemView {
  const file = basename(t.uri);
  // The same label as the panel, notifications and the status bar: `explain #3`.
  const label = `${t.agent} ${shortTaskId(t.id)}${file ? ` · ${file}` : ''}`;
  const parts: string[] = [taskStateLabel(t)];
  if (t.state === 'queued') {
    parts.push(formatDuration(now - t.createdAtMs));
  } else {
    parts.push(formatDuration(taskElapsedMs(t, now)));
  }
  const pm = providerModel(t);
  if (pm) parts.push(pm);
  if (t.retries > 0) parts.push(`${t.retries} ${t.retries === 1 ? 'retry' : 'retries'}`);
  const tip: string[] = [
    `**${escapeMd(t.agent)} ${shortTaskId(t.id)}** (\`${t.id}\`) — ${taskStateLabel(t)}`,
    '',
    `- output: ${t.output}`,
  ];
  if (t.uri) tip.push(`- document: ${escapeMd(file)}`);
  if (pm) tip.push(`- provider: ${escapeMd(pm)}`);
  tip.push(`- attempts: ${t.attempts}, retries: ${t.retries}`);
  tip.push(`- created: ${new Date(t.createdAtMs).toLocaleTimeString()}`);
  if (t.startedAtMs) tip.push(`- started: ${new Date(t.startedAtMs).toLocaleTimeString()}`);
  if (t.finishedAtMs) tip.push(`- finished: ${new Date(t.finishedAtMs).toLocaleTimeString()}`);
  tip.push(`- priority: ${t.priority}`);
  if (t.error) tip.push('', `**Error:** ${escapeMd(t.error)}`);
  if (t.state === 'awaiting_approval') tip.push('', 'The proposed edit waits for your approval: preview it, then apply or reject.');
  return {
    label,
    description: parts.join(' · '),
    tooltip: tip.join('\n'),
    icon: STATE_ICON[t.state] ?? { id: 'question' },
    contextValue: `task.${t.state}.${t.output}`,
  };
}

const OUTPUT_ICON: Record<string, string> = {
  answer: 'comment-discussion',
  edit: 'edit',
  diagnostics: 'checklist',
};

export function agentView(a: AgentStatus): ItemView {
  const counts: string[] = [];
  if (a.running > 0) counts.push(`${a.running} running`);
  if (a.queued > 0) counts.push(`${a.queued} queued`);
  if (a.background) counts.push(a.enabled ? 'watching' : 'background');
  const description = [a.description, ...counts].filter(Boolean).join(' · ');
  let icon: IconSpec;
  if (a.state === 'running') icon = { id: 'sync~spin' };
  else if (a.state === 'enabled') icon = { id: 'eye', color: 'charts.blue' };
  else icon = { id: OUTPUT_ICON[a.output] ?? 'hubot' };
  const tip = [
    `**${escapeMd(a.name)}** — ${escapeMd(a.description || 'agent')}`,
    '',
    `- state: ${a.state}${a.background ? ' (background agent)' : ''}`,
    `- output: ${a.output}`,
    `- providers: ${a.providers.length ? a.providers.map(escapeMd).join(' → ') : 'default chain'}`,
    `- running: ${a.running}, queued: ${a.queued}`,
  ].join('\n');
  return { label: a.name, description, tooltip: tip, icon, contextValue: `agent.${a.state}` };
}

export function orphanAgentView(name: string): ItemView {
  return {
    label: name,
    description: 'not configured any more',
    tooltip: `Agent **${escapeMd(name)}** has tasks but is no longer in the configuration.`,
    icon: { id: 'hubot', color: 'disabledForeground' },
    contextValue: 'agentOrphan',
  };
}

export function circuitLabel(circuit: string): string {
  switch (circuit) {
    case 'closed':
      return 'circuit closed';
    case 'half_open':
      return 'circuit half-open (probing)';
    case 'open':
      return 'circuit open';
    case 'misconfigured':
      return 'misconfigured';
    default:
      return circuit;
  }
}

const HEALTH_LABEL: Record<ProviderHealth, string> = {
  unknown: 'not contacted yet',
  healthy: 'healthy',
  unreachable: 'unreachable',
  failing: 'failing',
  circuit_open: 'circuit open',
  half_open: 'circuit half-open (probing)',
  misconfigured: 'misconfigured',
};

const HEALTH_ICON: Record<ProviderHealth, IconSpec> = {
  unknown: { id: 'circle-large-outline', color: 'disabledForeground' },
  healthy: { id: 'pass', color: 'testing.iconPassed' },
  unreachable: { id: 'debug-disconnect', color: 'notificationsErrorIcon.foreground' },
  failing: { id: 'warning', color: 'notificationsWarningIcon.foreground' },
  circuit_open: { id: 'error', color: 'notificationsErrorIcon.foreground' },
  half_open: { id: 'sync', color: 'notificationsWarningIcon.foreground' },
  misconfigured: { id: 'warning', color: 'notificationsWarningIcon.foreground' },
};

/** `healthy`, `unreachable`, `not contacted yet`, … */
export function healthLabel(p: ProviderStatus): string {
  return HEALTH_LABEL[providerHealth(p)];
}

export function providerView(p: ProviderStatus): ItemView {
  const health = providerHealth(p);
  const parts: string[] = [];
  if (p.kind) parts.push(p.kind);
  if (p.model) parts.push(p.model);
  parts.push(HEALTH_LABEL[health]);
  if (p.consecutiveFailures > 0 && health !== 'misconfigured') {
    parts.push(`${p.consecutiveFailures} failure${p.consecutiveFailures === 1 ? '' : 's'} in a row`);
  }
  const tip = [
    `**${escapeMd(p.name)}** — ${escapeMd(HEALTH_LABEL[health])}`,
    '',
    `- kind: ${escapeMd(p.kind || '?')}`,
    `- model: ${escapeMd(p.model || '?')}`,
    `- ${circuitLabel(p.circuit)}`,
    `- consecutive failures: ${p.consecutiveFailures}`,
  ];
  if (health === 'unknown') tip.push('', 'No call has been made to it since the server started. **Test Connection** checks it now.');
  if (p.error) tip.push('', `**${health === 'misconfigured' ? 'Error' : 'Last failure'}:** ${escapeMd(p.error)}`);
  return {
    label: p.name,
    description: parts.join(' · '),
    tooltip: tip.join('\n'),
    icon: HEALTH_ICON[health],
    contextValue: `provider.${health}`,
  };
}

export function providersRootView(providers: ProviderStatus[]): ItemView {
  const open = providers.filter((p) => p.circuit === 'open').length;
  const half = providers.filter((p) => p.circuit === 'half_open').length;
  const bad = providers.filter((p) => p.circuit === 'misconfigured').length;
  const unreachable = providers.filter((p) => providerHealth(p) === 'unreachable').length;
  const parts = [`${providers.length}`];
  if (unreachable) parts.push(`${unreachable} unreachable`);
  if (open) parts.push(`${open} open`);
  if (half) parts.push(`${half} half-open`);
  if (bad) parts.push(`${bad} misconfigured`);
  const problem = open + half + bad + unreachable > 0;
  return {
    label: 'Providers',
    description: parts.join(' · '),
    tooltip: problem
      ? 'Some providers are failing: tasks fail over to the next provider of their chain.'
      : 'No provider has failed since the server started.',
    icon: problem ? { id: 'warning', color: 'notificationsWarningIcon.foreground' } : { id: 'server-environment' },
    contextValue: 'providers',
  };
}

// ---- status bar ---------------------------------------------------------------------------

export type ServerState =
  | { kind: 'starting' }
  | { kind: 'running'; version?: string }
  | { kind: 'restarting'; inSeconds: number; attempt: number; reason?: string }
  | { kind: 'stopped'; reason?: string }
  | { kind: 'missing'; message: string };

export interface StatusBarView {
  text: string;
  tooltip: string; // markdown
  severity: 'normal' | 'warning' | 'error';
}

/** What the status bar knows besides the counts. */
export interface StatusBarContext {
  /** No provider is configured anywhere (the welcome view shows). */
  unconfigured?: boolean;
}

/**
 * The status bar item: the product's name and state — `$(infinity) Infinity Matrix` when idle,
 * with the counts when busy, a warning look with "no provider configured" or "providers
 * unreachable" when no provider can answer.
 */
export function statusBarView(server: ServerState, s: Summary, ctx: StatusBarContext = {}): StatusBarView {
  const tipEnd = '\n\n---\n\nClick to show the Agents view.';
  switch (server.kind) {
    case 'starting':
      return {
        text: '$(loading~spin) Infinity Matrix',
        tooltip: `**Infinity Matrix** — starting the server…${tipEnd}`,
        severity: 'normal',
      };
    case 'missing':
      return {
        text: '$(error) Infinity Matrix: no server',
        tooltip: `**Infinity Matrix** — ${escapeMd(server.message)}${tipEnd}`,
        severity: 'error',
      };
    case 'restarting':
      return {
        text: `$(warning) Infinity Matrix: server down, restarting in ${server.inSeconds} s`,
        tooltip:
          `**Infinity Matrix** — the server stopped${server.reason ? ` (${escapeMd(server.reason)})` : ''}; ` +
          `restart attempt ${server.attempt} in ${server.inSeconds} s.${tipEnd}`,
        severity: 'warning',
      };
    case 'stopped':
      return {
        text: '$(warning) Infinity Matrix: server stopped',
        tooltip: `**Infinity Matrix** — the server is not running${server.reason ? `: ${escapeMd(server.reason)}` : ''}. Run **Infinity Matrix: Restart Server**.${tipEnd}`,
        severity: 'warning',
      };
    case 'running':
      break;
  }
  const parts: string[] = [];
  if (s.running > 0 || s.queued > 0) {
    parts.push(`${s.running} running`);
    if (s.queued > 0) parts.push(`${s.queued} queued`);
  }
  if (s.awaitingApproval > 0) parts.push(`${s.awaitingApproval} to approve`);
  const down = s.unreachable.length + s.openCircuits.length;
  const allDown = s.providers > 0 && down >= s.providers;
  let icon: string;
  let severity: StatusBarView['severity'] = 'normal';
  if (ctx.unconfigured) {
    icon = '$(warning)';
    parts.unshift('no provider configured');
    severity = 'warning';
  } else if (allDown) {
    icon = '$(warning)';
    parts.unshift('providers unreachable');
    severity = 'warning';
  } else if (s.openCircuits.length > 0) {
    icon = s.running > 0 || s.queued > 0 ? '$(sync~spin)' : '$(warning)';
    parts.push(
      s.openCircuits.length === 1 ? `${s.openCircuits[0]?.name ?? ''} circuit open` : `${s.openCircuits.length} circuits open`,
    );
    severity = 'warning';
  } else if (s.running > 0 || s.queued > 0) {
    icon = '$(sync~spin)';
  } else if (s.awaitingApproval > 0) {
    icon = '$(diff)';
  } else {
    // No codicon draws an infinity sign: the character does.
    icon = '∞';
  }
  const text = `${icon} Infinity Matrix${parts.length ? `: ${parts.join(' · ')}` : ''}`;
  const tip: string[] = [`**Infinity Matrix**${server.version ? ` ${server.version}` : ''} — server running`, ''];
  if (ctx.unconfigured) tip.push('No provider is configured: run **Infinity Matrix: Configure Provider**.', '');
  tip.push(`- running: ${s.running}`);
  tip.push(`- queued: ${s.queued}`);
  tip.push(`- awaiting approval: ${s.awaitingApproval}`);
  tip.push(`- agents: ${s.agents}, providers: ${s.providers}`);
  const trouble = [...s.openCircuits, ...s.halfOpenCircuits, ...s.unreachable, ...s.misconfigured];
  if (trouble.length) {
    tip.push('', '**Providers with problems:**');
    for (const p of trouble) {
      tip.push(`- ${escapeMd(p.name)}: ${healthLabel(p)}${p.error ? ` — ${escapeMd(p.error)}` : ''}`);
    }
  }
  return { text, tooltip: tip.join('\n') + tipEnd, severity };
}

// ---- documents ------------------------------------------------------------------------------

/** The read-only result document of a task (markdown). */
export function renderTaskDocument(id: string, info: TaskInfo | undefined, text: TaskText | undefined, now: number): string {
  const lines: string[] = [];
  if (info) {
    lines.push(`# ${info.agent} ${shortTaskId(info.id)} · ${taskStateLabel(info)}`);
    const meta: string[] = [`task \`${info.id}\``];
    if (info.uri) meta.push(basename(info.uri));
    const pm = providerModel(info);
    if (pm) meta.push(pm);
    meta.push(formatDuration(taskElapsedMs(info, now)));
    if (info.retries > 0) meta.push(`${info.retries} ${info.retries === 1 ? 'retry' : 'retries'}`);
    lines.push(meta.join(' · '));
    if (info.error) lines.push('', `> **Error:** ${info.error}`);
    if (info.state === 'awaiting_approval') {
      lines.push('', '> The proposed edit waits for your approval (Apply / Reject, or the Agents view).');
    }
  } else {
    lines.push(`# Task ${id}`);
  }
  if (text?.resetReason) {
    lines.push('', `> A provider attempt failed (${text.resetReason}); the answer restarted.`);
  }
  if (text?.incomplete) {
    lines.push('', '> Part of the stream was missed; the full answer appears when the task finishes.');
  }
  lines.push('', '---', '');
  const body = text?.text ?? '';
  if (body) {
    lines.push(body);
  } else if (info && !isTerminal(info.state)) {
    lines.push(info.state === 'queued' ? '_Waiting in the queue…_' : '_Waiting for the model…_');
  } else if (info?.state === 'succeeded') {
    lines.push('_The task produced no text._');
  }
  return lines.join('\n') + '\n';
}

function fence(text: string): string {
  let ticks = '```';
  while (text.includes(ticks)) ticks += '`';
  return ticks;
}

/** The context snapshot as a markdown document: each item's provenance and token cost. */
export function renderContextDocument(
  result: ContextResult,
  where: { uri: string; line: number; character: number },
  languageOf: (uri: string) => string = () => '',
): string {
  const lines: string[] = [];
  lines.push(`# Context snapshot — ${basename(where.uri)}:${where.line + 1}:${where.character + 1}`);
  lines.push('');
  lines.push(
    `${result.items.length} item${result.items.length === 1 ? '' : 's'}, ` +
      `${result.totalTokens} of ${result.budgetTokens} tokens (${Math.round((100 * result.totalTokens) / Math.max(1, result.budgetTokens))}% of the budget)` +
      (result.indexComplete === false ? ' — the workspace index is still being built' : ''),
  );
  lines.push('');
  lines.push('| # | kind | tokens | where | why |');
  lines.push('| --- | --- | ---: | --- | --- |');
  result.items.forEach((item, i) => {
    const loc = `${basename(item.uri)}:${item.range.start.line + 1}-${item.range.end.line + 1}`;
    lines.push(`| ${i + 1} | ${item.kind} | ${item.tokens} | ${loc} | ${item.reason.replace(/\|/g, '\\|')} |`);
  });
  result.items.forEach((item, i) => {
    lines.push('');
    lines.push(`## ${i + 1}. ${item.kind} — ${item.tokens} tokens`);
    lines.push('');
    const elided = (item.elided ?? []).map(([a, b]) => (a === b ? `${a + 1}` : `${a + 1}–${b + 1}`));
    lines.push(
      `${item.uri} lines ${item.range.start.line + 1}–${item.range.end.line + 1}` +
        (elided.length ? ` (elided: ${elided.join(', ')})` : ''),
    );
    lines.push('');
    lines.push(`_${item.reason}_`);
    lines.push('');
    const f = fence(item.text);
    lines.push(`${f}${languageOf(item.uri)}`);
    lines.push(item.text.replace(/\n$/, ''));
    lines.push(f);
  });
  lines.push('');
  lines.push('## Rendered prompt context');
  lines.push('');
  const f = fence(result.rendered);
  lines.push(`${f}text`);
  lines.push(result.rendered.replace(/\n$/, ''));
  lines.push(f);
  return lines.join('\n') + '\n';
}

/** Recent audit entries as a markdown document, newest first. */
export function renderAuditDocument(entries: AuditEntry[]): string {
  const lines = ['# Infinity Matrix audit log', ''];
  if (entries.length === 0) {
    lines.push('_No entries yet._');
    return lines.join('\n') + '\n';
  }
  lines.push(`${entries.length} most recent entries, newest first.`, '');
  lines.push('| time | kind | task | agent | summary |');
  lines.push('| --- | --- | --- | --- | --- |');
  const sorted = [...entries].sort((a, b) => b.at - a.at);
  for (const e of sorted) {
    const time = new Date(e.at).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
    const summary = e.summary.replace(/\|/g, '\\|').replace(/\n/g, ' ');
    lines.push(`| ${time} | ${e.kind} | \`${e.taskId}\` | ${e.agent ?? ''} | ${summary} |`);
  }
  return lines.join('\n') + '\n';
}
