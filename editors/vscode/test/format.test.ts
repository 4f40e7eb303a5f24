import { describe, expect, it } from 'vitest';
import {
  linesChangedLabel,
  agentView,
  basename,
  formatDuration,
  providersRootView,
  providerView,
  renderAuditDocument,
  renderContextDocument,
  renderTaskDocument,
  statusBarView,
  taskView,
} from '../src/format';
import { AgentModel } from '../src/model';
import { agent, provider, status, task } from './fixtures';

const idle = () => new AgentModel().summary();

describe('status bar monitor', () => {
  it('idle server', () => {
    const v = statusBarView({ kind: 'running' }, idle());
    expect(v.text).toBe('∞ Infinity Matrix');
    expect(v.severity).toBe('normal');
    expect(v.tooltip).toContain('Click to show the Agents view');
  });

  it('spins with running and queued counts', () => {
    const m = new AgentModel();
    m.applyStatus(status({ tasks: [task({ id: 'a-1', state: 'running' }), task({ id: 'a-2' }), task({ id: 'a-3' })], running: 1, queued: 2 }));
    const v = statusBarView({ kind: 'running', version: '0.1.0' }, m.summary());
    expect(v.text).toBe('$(sync~spin) Infinity Matrix: 1 running · 2 queued');
    expect(v.tooltip).toContain('- running: 1');
    expect(v.tooltip).toContain('0.1.0');
  });

  it('shows edits waiting for approval', () => {
    const m = new AgentModel();
    m.applyTaskEvent({ type: 'state', task: task({ id: 'a-1', state: 'awaiting_approval', output: 'edit' }) });
    expect(statusBarView({ kind: 'running' }, m.summary()).text).toBe('$(diff) Infinity Matrix: 1 to approve');
  });

  it('warns when a circuit is open', () => {
    const m = new AgentModel();
    m.applyStatus(status({ providers: [provider({ name: 'claude', circuit: 'open', error: 'HTTP 529' }), provider({ name: 'local' })] }));
    const v = statusBarView({ kind: 'running' }, m.summary());
    expect(v.text).toBe('$(warning) Infinity Matrix: claude circuit open');
    expect(v.severity).toBe('warning');
    expect(v.tooltip).toContain('claude: circuit open — HTTP 529');
  });

  it('says when no provider is configured, or none can be reached', () => {
    const none = statusBarView({ kind: 'running' }, idle(), { unconfigured: true });
    expect(none.text).toBe('$(warning) Infinity Matrix: no provider configured');
    expect(none.severity).toBe('warning');
    expect(none.tooltip).toContain('Configure Provider');
    const m = new AgentModel();
    m.applyStatus(
      status({
        providers: [
          provider({ name: 'local', health: 'unreachable', consecutiveFailures: 4, error: 'connection refused' }),
          provider({ name: 'cloud', circuit: 'open' }),
        ],
      }),
    );
    const v = statusBarView({ kind: 'running' }, m.summary());
    expect(v.text).toBe('$(warning) Infinity Matrix: providers unreachable');
    expect(v.tooltip).toContain('local: unreachable — connection refused');
    expect(v.tooltip).toContain('cloud: circuit open');
  });

  it('the tooltip counts are the summary the tree shows', () => {
    const m = new AgentModel();
    m.applyStatus(status({ tasks: [task({ id: 'a-1', state: 'running' }), task({ id: 'a-2' })], running: 1, queued: 1 }));
    const s = m.summary();
    const v = statusBarView({ kind: 'running' }, s);
    expect(v.tooltip).toContain(`- running: ${s.running}`);
    expect(v.tooltip).toContain(`- queued: ${s.queued}`);
    expect(v.tooltip).toContain(`- agents: ${s.agents}, providers: ${s.providers}`);
  });

  it('warns while the server is down and restarting', () => {
    const v = statusBarView({ kind: 'restarting', inSeconds: 4, attempt: 3, reason: 'the server exited' }, idle());
    expect(v.text).toBe('$(warning) Infinity Matrix: server down, restarting in 4 s');
    expect(v.severity).toBe('warning');
    expect(v.tooltip).toContain('restart attempt 3');
  });

  it('error look when the binary is missing', () => {
    const v = statusBarView({ kind: 'missing', message: 'not found' }, idle());
    expect(v.severity).toBe('error');
    expect(v.text).toContain('no server');
  });

  it('starting and stopped', () => {
    expect(statusBarView({ kind: 'starting' }, idle()).text).toContain('loading~spin');
    expect(statusBarView({ kind: 'stopped' }, idle()).severity).toBe('warning');
  });
});

describe('tree items', () => {
  it('task: state, elapsed, provider/model, retries', () => {
    const v = taskView(
      task({ id: '18f-7', state: 'running', startedAtMs: 1_000, provider: 'local', model: 'smollm2', retries: 2, attempts: 3 }),
      13_500,
    );
    expect(v.label).toBe('explain #7 · main.rs');
    expect(v.description).toBe('running · 12 s · local/smollm2 · 2 retries');
    expect(v.icon.id).toBe('sync~spin');
    expect(v.contextValue).toBe('task.running.answer');
  });

  it('task: queued time and failure reason', () => {
    expect(taskView(task({ id: 'x-1' }), 3_000).description).toBe('queued · 2.0 s');
    const failed = taskView(task({ id: 'x-2', state: 'failed', startedAtMs: 1_000, finishedAtMs: 2_000, error: 'all providers failed' }), 99_000);
    expect(failed.description).toBe('failed · 1.0 s');
    expect(failed.tooltip).toContain('all providers failed');
    expect(failed.icon).toEqual({ id: 'error', color: 'testing.iconFailed' });
  });

  it('task awaiting approval has its own context value (inline Apply / Reject)', () => {
    const v = taskView(task({ id: 'x-3', state: 'awaiting_approval', output: 'edit' }), 2_000);
    expect(v.contextValue).toBe('task.awaiting_approval.edit');
    expect(v.description.startsWith('awaiting approval')).toBe(true);
  });

  it('agent: description and counts, icon per state', () => {
    expect(agentView(agent({ name: 'explain', description: 'Explain code', running: 1, queued: 2, state: 'running' }))).toMatchObject({
      label: 'explain',
      description: 'Explain code · 1 running · 2 queued',
      icon: { id: 'sync~spin' },
      contextValue: 'agent.running',
    });
    expect(agentView(agent({ name: 'review', background: true, enabled: true, state: 'enabled' })).description).toContain('watching');
    expect(agentView(agent({ name: 'fix', output: 'edit' })).icon.id).toBe('edit');
  });

  it('providers: health and circuit state', () => {
    // Never contacted: unknown, not a green check.
    const fresh = providerView(provider({ name: 'local', model: 'smollm2' }));
    expect(fresh.description).toBe('openai · smollm2 · not contacted yet');
    expect(fresh.icon.id).not.toBe('pass');
    expect(providerView(provider({ name: 'local', model: 'smollm2', health: 'healthy' })).description).toBe('openai · smollm2 · healthy');
    // Nothing listening: unreachable with the reason, never "healthy · 4 failures".
    const down = providerView(provider({ name: 'l', health: 'unreachable', consecutiveFailures: 4, error: 'connection refused' }));
    expect(down.description).toBe('openai · m · unreachable · 4 failures in a row');
    expect(down.tooltip).toContain('connection refused');
    expect(down.description).not.toContain('healthy');
    const open = providerView(provider({ name: 'c', circuit: 'open', consecutiveFailures: 5, health: 'unreachable' }));
    expect(open.description).toBe('openai · m · circuit open · 5 failures in a row');
    expect(open.icon.id).toBe('error');
    const bad = providerView(provider({ name: 'b', kind: '', model: '', circuit: 'misconfigured', error: 'no key' }));
    expect(bad.description).toBe('misconfigured');
    expect(bad.tooltip).toContain('no key');
    expect(providersRootView([provider({ name: 'a' }), provider({ name: 'c', circuit: 'open' })]).description).toBe('2 · 1 open');
    expect(providersRootView([provider({ name: 'a', health: 'unreachable' })]).description).toBe('1 · 1 unreachable');
  });
});

describe('helpers', () => {
  it('durations', () => {
    expect(formatDuration(400)).toBe('0.4 s');
    expect(formatDuration(12_300)).toBe('12 s');
    expect(formatDuration(65_000)).toBe('1 m 05 s');
    expect(formatDuration(2 * 3600_000 + 3 * 60_000)).toBe('2 h 03 m');
    expect(formatDuration(-5)).toBe('0.0 s');
  });

  it('basename of URIs', () => {
    expect(basename('file:///a/b/my%20file.rs')).toBe('my file.rs');
    expect(basename(null)).toBe('');
    expect(basename('untitled:Untitled-1')).toBe('untitled:Untitled-1');
  });
});

describe('documents', () => {
  it('task result: header, streamed text, reset and gap notes', () => {
    const info = task({ id: 'x-1', state: 'running', startedAtMs: 1_000, provider: 'local', model: 'm' });
    const doc = renderTaskDocument('x-1', info, { text: 'Hello **world**', seq: 3, incomplete: true, resetReason: 'timeout', final: false }, 3_000);
    expect(doc).toContain('# explain #1 · running');
    expect(doc).toContain('local/m');
    expect(doc).toContain('restarted');
    expect(doc).toContain('missed');
    expect(doc.trimEnd().endsWith('Hello **world**')).toBe(true);
    expect(renderTaskDocument('x-2', task({ id: 'x-2' }), undefined, 0)).toContain('Waiting in the queue');
    expect(renderTaskDocument('x-3', undefined, undefined, 0)).toContain('# Task x-3');
  });

  it('context snapshot: provenance and token cost of each item', () => {
    const doc = renderContextDocument(
      {
        items: [
          { kind: 'selection', uri: 'file:///w/a.rs', range: { start: { line: 0, character: 0 }, end: { line: 1, character: 0 } }, text: 'fn a() {}\n', tokens: 5, reason: 'the selection' },
          { kind: 'definition', uri: 'file:///w/b.rs', range: { start: { line: 9, character: 0 }, end: { line: 11, character: 1 } }, text: 'fn b() { ``` }', tokens: 7, reason: 'definition of function b used here (same directory)' },
          { kind: 'definition', uri: 'file:///w/c.rs', range: { start: { line: 0, character: 0 }, end: { line: 40, character: 1 } }, text: 'pub struct C {\n    ⋯ lines 2-40 elided\n}\n', tokens: 9, reason: 'skeleton of long definition of struct C used here (resolved)', elided: [[1, 39]] },
        ],
        totalTokens: 21,
        budgetTokens: 100,
        rendered: 'RENDERED',
        indexComplete: false,
      },
      { uri: 'file:///w/a.rs', line: 0, character: 3 },
      () => 'rust',
    );
    expect(doc).toContain('# Context snapshot — a.rs:1:4');
    expect(doc).toContain('3 items, 21 of 100 tokens (21% of the budget) — the workspace index is still being built');
    expect(doc).toContain('file:///w/c.rs lines 1–41 (elided: 2–40)');
    expect(doc).toContain('| 2 | definition | 7 | b.rs:10-12 | definition of function b used here (same directory) |');
    expect(doc).toContain('````rust'); // a longer fence around text holding ```
    expect(doc).toContain('RENDERED');
  });

  it('audit log, newest first', () => {
    const doc = renderAuditDocument([
      { at: 1_000, kind: 'task', taskId: 't-1', agent: 'explain', summary: 'created', details: {} },
      { at: 2_000, kind: 'transition', taskId: 't-1', agent: 'explain', summary: 'queued → running', details: {} },
    ]);
    expect(doc.indexOf('queued → running')).toBeLessThan(doc.indexOf('created'));
    expect(renderAuditDocument([])).toContain('No entries');
  });
});

describe('changed-line counts', () => {
  it('say line or lines', () => {
    expect(linesChangedLabel(1)).toBe('1 line changed');
    expect(linesChangedLabel(0)).toBe('0 lines changed');
    expect(linesChangedLabel(12)).toBe('12 lines changed');
  });
});

describe('rejected edits', () => {
  it('show as rejected, not cancelled, in the tree and the panel', () => {
    const t = task({ id: 's-9', agent: 'fix', output: 'edit', state: 'cancelled', error: 'edit rejected', finishedAtMs: 2_000 });
    expect(taskView(t, 3_000).description).toMatch(/^rejected/);
    expect(taskView(task({ id: 's-8', state: 'cancelled', error: 'cancelled by the user' }), 3_000).description).toMatch(/^cancelled/);
  });
});
