/**
 * The client-side state of agents, tasks, streamed text and providers, fed by the server's
 * `infinityMatrix/agentStatus` and `infinityMatrix/taskEvent` notifications.
 *
 * No `vscode` import: every update returns a {@link ModelChange} naming exactly what changed,
 * so the tree can refresh single elements (no flicker) and the tests run in plain node.
 */
import {
  type AgentDef,
  type AgentStatus,
  isTerminal,
  providerHealth,
  type ProviderStatus,
  type StatusSnapshot,
  type TaskDetail,
  type TaskEvent,
  type TaskInfo,
} from './lsp_ext';

/** Streamed text of one task. */
export interface TaskText {
  text: string;
  /** Last wire sequence number applied (chunks and resets share one sequence). */
  seq: number;
  /** A chunk was missed (sequence gap): the text is incomplete until the task is fetched. */
  incomplete: boolean;
  /** Set when a provider attempt failed after streaming: earlier text was discarded. */
  resetReason?: string;
  /** The text is the server's final record (fetched after the task ended). */
  final: boolean;
}

/** What one update changed. */
export interface ModelChange {
  /** The set of agents or the providers node's presence changed: refresh the whole tree. */
  root: boolean;
  /** Agents whose own item (counts, state) or children (tasks added/removed) changed. */
  agents: Set<string>;
  /** Tasks whose item changed (state, provider, retries…). */
  tasks: Set<string>;
  /** The providers node or its children changed. */
  providers: boolean;
  /** Tasks whose streamed text changed. */
  text: Set<string>;
  /** Counts, approvals or provider health changed (status bar). */
  summary: boolean;
  /** Tasks that just ended (fetch their final text). */
  finished: Set<string>;
  /** Tasks that just started waiting for approval. */
  awaiting: Set<string>;
}

export function emptyChange(): ModelChange {
  return {
    root: false,
    agents: new Set(),
    tasks: new Set(),
    providers: false,
    text: new Set(),
    summary: false,
    finished: new Set(),
    awaiting: new Set(),
  };
}

export function isEmptyChange(c: ModelChange): boolean {
  return (
    !c.root &&
    !c.providers &&
    !c.summary &&
    c.agents.size === 0 &&
    c.tasks.size === 0 &&
    c.text.size === 0 &&
    c.finished.size === 0 &&
    c.awaiting.size === 0
  );
}

export interface Summary {
  /** Tasks running on a provider (not counting those waiting for approval). */
  running: number;
  queued: number;
  awaitingApproval: number;
  openCircuits: ProviderStatus[];
  halfOpenCircuits: ProviderStatus[];
  /** Providers whose last call could not connect (circuit still closed). */
  unreachable: ProviderStatus[];
  misconfigured: ProviderStatus[];
  providers: number;
  agents: number;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export interface ModelOptions {
  /** Finished tasks kept per agent (newest first); active tasks are always kept. */
  finishedPerAgent?: number;
}

export class AgentModel {
  private readonly agentMap = new Map<string, AgentStatus>();
  private readonly taskMap = new Map<string, TaskInfo>();
  private readonly texts = new Map<string, TaskText>();
  private providerList: ProviderStatus[] = [];
  private serverRunning = 0;
  private serverQueued = 0;
  private readonly finishedPerAgent: number;

  constructor(options: ModelOptions = {}) {
    this.finishedPerAgent = options.finishedPerAgent ?? 10;
  }

  // ---- queries -------------------------------------------------------------------------------

  get agents(): AgentStatus[] {
    return [...this.agentMap.values()];
  }

  agent(name: string): AgentStatus | undefined {
    return this.agentMap.get(name);
  }

  get providers(): ProviderStatus[] {
    return this.providerList;
  }

  provider(name: string): ProviderStatus | undefined {
    return this.providerList.find((p) => p.name === name);
  }

  task(id: string): TaskInfo | undefined {
    return this.taskMap.get(id);
  }

  get tasks(): TaskInfo[] {
    return [...this.taskMap.values()].sort(byNewest);
  }

  /** Tasks of an agent: newest first. */
  tasksOf(agent: string): TaskInfo[] {
    return this.tasks.filter((t) => t.agent === agent);
  }

  /** Agents with tasks but not in the agent list (e.g. removed from the configuration). */
  orphanAgents(): string[] {
    const names = new Set<string>();
    for (const t of this.taskMap.values()) {
      if (!this.agentMap.has(t.agent)) {
        names.add(t.agent);
      }
    }
    return [...names].sort();
  }

  text(id: string): TaskText | undefined {
    return this.texts.get(id);
  }

  summary(): Summary {
    let awaiting = 0;
    let localRunning = 0;
    let localQueued = 0;
    for (const t of this.taskMap.values()) {
      if (t.state === 'awaiting_approval') awaiting++;
      else if (t.state === 'running') localRunning++;
      else if (t.state === 'queued') localQueued++;
    }
    // The server's counts cover tasks beyond the 50 it lists; task events can be fresher than
    // the (coalesced) status: take the larger of the two.
    const running = Math.max(localRunning, this.serverRunning - awaiting, 0);
    const queued = Math.max(localQueued, this.serverQueued);
    return {
      running,
      queued,
      awaitingApproval: awaiting,
      openCircuits: this.providerList.filter((p) => p.circuit === 'open'),
      halfOpenCircuits: this.providerList.filter((p) => p.circuit === 'half_open'),
      unreachable: this.providerList.filter((p) => providerHealth(p) === 'unreachable'),
      misconfigured: this.providerList.filter((p) => p.circuit === 'misconfigured'),
      providers: this.providerList.length,
      agents: this.agentMap.size,
    };
  }

  // ---- updates -------------------------------------------------------------------------------

  /** Applies an `infinityMatrix/agentStatus` snapshot. */
  applyStatus(s: StatusSnapshot): ModelChange {
    const change = emptyChange();
    // agents
    const newNames = s.agents.map((a) => a.name);
    const oldNames = [...this.agentMap.keys()];
    if (!sameJson(newNames, oldNames)) {
      change.root = true;
      const next = new Map<string, AgentStatus>();
      for (const a of s.agents) next.set(a.name, a);
      this.agentMap.clear();
      for (const [k, v] of next) this.agentMap.set(k, v);
    } else {
      for (const a of s.agents) {
        if (!sameJson(this.agentMap.get(a.name), a)) {
          this.agentMap.set(a.name, a);
          change.agents.add(a.name);
        }
      }
    }
    // tasks
    for (const t of s.tasks) {
      this.putTask(t, change);
    }
    this.prune(change);
    // providers
    if (!sameJson(this.providerList, s.providers)) {
      const hadProviders = this.providerList.length > 0;
      this.providerList = s.providers;
      change.providers = true;
      change.summary = true;
      if (hadProviders !== s.providers.length > 0) change.root = true;
    }
    if (this.serverRunning !== s.running || this.serverQueued !== s.queued) {
      this.serverRunning = s.running;
      this.serverQueued = s.queued;
      change.summary = true;
    }
    return change;
  }

  /**
   * Takes the agent definitions (`infinityMatrix/agents`): the list shown before the server's
   * first status snapshot, and after a configuration change. Live counts are kept.
   */
  applyAgentDefs(defs: AgentDef[]): ModelChange {
    const change = emptyChange();
    const next = new Map<string, AgentStatus>();
    for (const d of defs) {
      const old = this.agentMap.get(d.name);
      const background = d.triggers.includes('onSave') || d.triggers.includes('onDiagnostics');
      const a: AgentStatus = old
        ? { ...old, description: d.description, output: d.output, providers: d.providers, background }
        : {
            name: d.name,
            description: d.description,
            state: 'idle',
            background,
            enabled: false,
            running: 0,
            queued: 0,
            output: d.output,
            providers: d.providers,
          };
      next.set(d.name, a);
      if (old && !sameJson(old, a)) change.agents.add(d.name);
    }
    if (!sameJson([...next.keys()], [...this.agentMap.keys()])) {
      change.root = true;
      change.summary = true;
    }
    this.agentMap.clear();
    for (const [k, v] of next) this.agentMap.set(k, v);
    return change;
  }

  /** Applies an `infinityMatrix/taskEvent`. */
  applyTaskEvent(e: TaskEvent): ModelChange {
    const change = emptyChange();
    switch (e.type) {
      case 'state':
        this.putTask(e.task, change, true);
        this.prune(change);
        break;
      case 'chunk': {
        const buf = this.textBuffer(e.taskId);
        if (buf.final || e.seq <= buf.seq) {
          break; // duplicate, or the final text is already there
        }
        if (e.seq !== buf.seq + 1) {
          buf.incomplete = true;
        }
        buf.seq = e.seq;
        buf.text += e.text;
        change.text.add(e.taskId);
        break;
      }
      case 'reset': {
        const buf = this.textBuffer(e.taskId);
        if (buf.final || e.seq <= buf.seq) {
          break;
        }
        buf.seq = e.seq;
        buf.text = '';
        buf.incomplete = false;
        buf.resetReason = e.reason;
        change.text.add(e.taskId);
        break;
      }
    }
    return change;
  }

  /**
   * Takes a task's full record (`infinityMatrix/task`). Once the task has ended its text is
   * final and replaces the streamed one (filling any gap). While it runs the streamed chunks
   * stay authoritative: the record may already hold text whose chunks are still on the way,
   * and adopting it would duplicate them.
   */
  applyDetail(d: TaskDetail): ModelChange {
    const change = emptyChange();
    const { text, edit: _edit, diagnostics: _diagnostics, approval: _approval, ...info } = d;
    this.putTask(info, change);
    if (!isTerminal(d.state)) return change;
    const buf = this.textBuffer(d.id);
    if (buf.text !== text || buf.incomplete || !buf.final) {
      buf.text = text;
      buf.incomplete = false;
      buf.final = true;
      change.text.add(d.id);
    }
    return change;
  }

  /**
   * The server stopped (to be restarted): agents and providers go (the next server reports
   * its own), tasks and their text stay, so the history and open answers survive a restart;
   * the restarted server's task list updates their states.
   */
  serverStopped(): ModelChange {
    const change = emptyChange();
    if (this.agentMap.size || this.providerList.length) {
      change.root = true;
      change.summary = true;
      change.providers = true;
    }
    this.agentMap.clear();
    this.providerList = [];
    this.serverRunning = 0;
    this.serverQueued = 0;
    return change;
  }

  /**
   * After a restart, the new server's task list is in: a task still active here that the new
   * server does not know ended with the old server (no audit log to recover it from).
   */
  settleUnknown(known: ReadonlySet<string>, now: number): ModelChange {
    const change = emptyChange();
    for (const t of [...this.taskMap.values()]) {
      if (isTerminal(t.state) || known.has(t.id)) continue;
      this.putTask({ ...t, state: 'failed', finishedAtMs: now, error: 'interrupted: the server stopped' }, change, true);
    }
    return change;
  }

  /** Forgets everything (the server stopped). */
  clear(): ModelChange {
    const change = emptyChange();
    if (this.agentMap.size || this.taskMap.size || this.providerList.length) {
      change.root = true;
      change.summary = true;
      change.providers = true;
    }
    for (const id of this.texts.keys()) change.text.add(id);
    this.agentMap.clear();
    this.taskMap.clear();
    this.texts.clear();
    this.providerList = [];
    this.serverRunning = 0;
    this.serverQueued = 0;
    return change;
  }

  // ---- internals ------------------------------------------------------------------------------

  private textBuffer(id: string): TaskText {
    let buf = this.texts.get(id);
    if (!buf) {
      buf = { text: '', seq: 0, incomplete: false, final: false };
      this.texts.set(id, buf);
    }
    return buf;
  }

  /**
   * Stores a task. `adjustCounts` (task events): the counts of the last status snapshot are
   * moved along with the task's state, so the status bar and the agent's item are right at
   * once; the next (coalesced) snapshot brings the server's own counts.
   */
  private putTask(t: TaskInfo, change: ModelChange, adjustCounts = false): void {
    const old = this.taskMap.get(t.id);
    if (old && sameJson(old, t)) {
      return;
    }
    // A state event can overtake a (coalesced) status snapshot carrying an older view of the
    // same task: never move a finished task back to an active state.
    if (old && isTerminal(old.state) && !isTerminal(t.state)) {
      return;
    }
    this.taskMap.set(t.id, t);
    if (adjustCounts) this.moveCounts(old?.state, t, change);
    if (old) {
      change.tasks.add(t.id);
      if (old.agent !== t.agent) change.agents.add(old.agent);
    }
    // A new task, or one that changed state, changes its agent's item (counts) and children.
    if (!old || old.state !== t.state) {
      change.agents.add(t.agent);
      change.summary = true;
      if (!this.agentMap.has(t.agent)) change.root = true;
    }
    if (t.state === 'awaiting_approval' && old?.state !== 'awaiting_approval') {
      change.awaiting.add(t.id);
    }
    if (isTerminal(t.state) && (!old || !isTerminal(old.state))) {
      change.finished.add(t.id);
    }
  }

  private moveCounts(from: TaskInfo['state'] | undefined, t: TaskInfo, change: ModelChange): void {
    const bucket = (s: TaskInfo['state'] | undefined) =>
      s === 'running' || s === 'awaiting_approval' ? 'running' : s === 'queued' ? 'queued' : undefined;
    const a = bucket(from);
    const b = bucket(t.state);
    if (a === b) return;
    const delta = { running: 0, queued: 0 };
    if (a) delta[a]--;
    if (b) delta[b]++;
    this.serverRunning = Math.max(0, this.serverRunning + delta.running);
    this.serverQueued = Math.max(0, this.serverQueued + delta.queued);
    change.summary = true;
    const agent = this.agentMap.get(t.agent);
    if (agent) {
      const running = Math.max(0, agent.running + delta.running);
      const queued = Math.max(0, agent.queued + delta.queued);
      const state = running > 0 ? 'running' : agent.enabled ? 'enabled' : 'idle';
      this.agentMap.set(t.agent, { ...agent, running, queued, state });
      change.agents.add(t.agent);
    }
  }

  private prune(change: ModelChange): void {
    const perAgent = new Map<string, TaskInfo[]>();
    for (const t of this.taskMap.values()) {
      if (!isTerminal(t.state)) continue;
      const list = perAgent.get(t.agent) ?? [];
      list.push(t);
      perAgent.set(t.agent, list);
    }
    for (const [agent, list] of perAgent) {
      if (list.length <= this.finishedPerAgent) continue;
      list.sort(byNewest);
      for (const t of list.slice(this.finishedPerAgent)) {
        this.taskMap.delete(t.id);
        this.texts.delete(t.id);
        change.tasks.delete(t.id);
        change.agents.add(agent);
      }
    }
  }
}

function byNewest(a: TaskInfo, b: TaskInfo): number {
  return b.createdAtMs - a.createdAtMs || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}
