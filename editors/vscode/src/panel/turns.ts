/**
 * The answer panel's view model: tasks as conversation turns (question, what was sent, the
 * streamed answer, a live header), built from the agent model and what the extension knows
 * about the tasks it started. No `vscode` import: the tests run it in plain node.
 */
import { basename, formatDuration, shortTaskId, taskElapsedMs, taskStateLabel } from '../format';
import { isTerminal, type Range, type TaskInfo } from '../lsp_ext';
import type { AgentModel } from '../model';

/** What the extension knows about a task it started (the server's record has no question). */
export interface TurnRequest {
  /** The question as typed, or the agent's name when it was started on a selection. */
  question: string;
  /** The code the task is about. */
  target?: { uri: string; range: Range };
  /** The context items the server reported for the task (what was sent). */
  context?: ContextChip[];
  /** The turn this one follows up (same conversation). */
  parentTaskId?: string;
  /** How to run the same request again (Retry; a follow-up reuses its target). */
  resend?: { command: string; args: Record<string, unknown> };
}

export interface ContextChip {
  uri: string;
  range: Range;
  kind: string;
  reason: string;
  tokens: number;
}

/** One chip under the question: the target, or a context item (click opens the range). */
export interface Chip {
  label: string;
  title: string;
  uri: string;
  range: Range;
}

export type TurnPhase = 'waiting' | 'streaming' | 'approval' | 'done' | 'failed' | 'cancelled';

export interface TurnView {
  id: string;
  /** `explain #3`: the same label the tree, notifications and status bar use. */
  label: string;
  agent: string;
  phase: TurnPhase;
  stateText: string;
  question: string;
  /** Header facts: provider/model, elapsed, tokens, retries. */
  facts: string[];
  chips: Chip[];
  /** Markdown of the answer so far. */
  text: string;
  /** Notices above the answer (a restarted stream, a gap). */
  notices: string[];
  error?: string;
  canCancel: boolean;
  canRetry: boolean;
  /** A task the panel can continue with a follow-up (it ended with an answer). */
  canFollowUp: boolean;
}

/** The label of a task everywhere in the UI: `agent #n`. */
export function taskLabel(t: Pick<TaskInfo, 'agent' | 'id'>): string {
  return `${t.agent} ${shortTaskId(t.id)}`;
}

function lineSpan(range: Range): string {
  const a = range.start.line + 1;
  // A range ending at column 0 of a line ends on the line before.
  const endLine = range.end.character === 0 && range.end.line > range.start.line ? range.end.line : range.end.line + 1;
  return a === endLine ? `${a}` : `${a}–${endLine}`;
}

function phaseOf(t: TaskInfo): TurnPhase {
  switch (t.state) {
    case 'queued':
      return 'waiting';
    case 'running':
      return 'streaming';
    case 'awaiting_approval':
      return 'approval';
    case 'succeeded':
      return 'done';
    case 'failed':
      return 'failed';
    case 'cancelled':
      return 'cancelled';
  }
}

function tokensFact(t: TaskInfo): string | undefined {
  const tin = t.tokensIn ?? null;
  const tout = t.tokensOut ?? null;
  if (tin === null && tout === null) return undefined;
  return `${tin ?? '?'} → ${tout ?? '?'} tokens`;
}

/** One task as a turn. `request` is what this window sent, when it started the task. */
export function turnView(t: TaskInfo, model: AgentModel, request: TurnRequest | undefined, now: number): TurnView {
  const buf = model.text(t.id);
  const facts: string[] = [];
  const pm = t.provider && t.model ? `${t.provider}/${t.model}` : (t.provider ?? t.model ?? '');
  if (pm) facts.push(pm);
  facts.push(formatDuration(t.state === 'queued' ? now - t.createdAtMs : taskElapsedMs(t, now)));
  const tokens = tokensFact(t);
  if (tokens) facts.push(tokens);
  if (t.retries > 0) facts.push(`${t.retries} ${t.retries === 1 ? 'retry' : 'retries'}`);
  const chips: Chip[] = [];
  const target = request?.target;
  if (target) {
    chips.push({
      label: `${basename(target.uri)}:${lineSpan(target.range)}`,
      title: 'The code the question is about',
      uri: target.uri,
      range: target.range,
    });
  }
  for (const c of request?.context ?? []) {
    chips.push({
      label: `${basename(c.uri)}:${lineSpan(c.range)} · ${c.tokens} tok`,
      title: `${c.kind}: ${c.reason}`,
      uri: c.uri,
      range: c.range,
    });
  }
  const notices: string[] = [];
  if (buf?.resetReason) notices.push(`A provider attempt failed (${buf.resetReason}); the answer restarted.`);
  if (buf?.incomplete) notices.push('Part of the stream was missed; the full answer appears when the task ends.');
  const phase = phaseOf(t);
  const terminal = isTerminal(t.state);
  return {
    id: t.id,
    label: taskLabel(t),
    agent: t.agent,
    phase,
    stateText: taskStateLabel(t),
    question: request?.question ?? (t.uri ? `${t.agent} on ${basename(t.uri)}` : t.agent),
    facts,
    chips,
    text: buf?.text ?? '',
    notices,
    error: t.error ?? undefined,
    canCancel: !terminal,
    canRetry: t.state === 'failed' || t.state === 'cancelled',
    canFollowUp: t.state === 'succeeded' && t.output === 'answer',
  };
}

/**
 * The conversation `id` belongs to, oldest turn first: its ancestors through `parentTaskId`,
 * then the turns that follow it up (the newest follow-up chain).
 */
export function conversation(id: string, requests: ReadonlyMap<string, TurnRequest>): string[] {
  const chain: string[] = [];
  const seen = new Set<string>();
  for (let cur: string | undefined = id; cur && !seen.has(cur); cur = requests.get(cur)?.parentTaskId) {
    seen.add(cur);
    chain.unshift(cur);
  }
  // Follow-ups of the last turn, newest child each time.
  for (;;) {
    const last = chain[chain.length - 1];
    const children = [...requests.entries()].filter(([child, r]) => r.parentTaskId === last && !seen.has(child));
    const next = children.at(-1)?.[0];
    if (!next) break;
    seen.add(next);
    chain.push(next);
  }
  return chain;
}

/** The turns of the conversation around `focus`, those the model still knows. */
export function conversationTurns(
  focus: string | undefined,
  model: AgentModel,
  requests: ReadonlyMap<string, TurnRequest>,
  now: number,
): TurnView[] {
  if (!focus) return [];
  const out: TurnView[] = [];
  for (const id of conversation(focus, requests)) {
    const t = model.task(id);
    if (t) out.push(turnView(t, model, requests.get(id), now));
  }
  return out;
}
