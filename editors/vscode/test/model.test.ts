import { describe, expect, it } from 'vitest';
import { AgentModel, isEmptyChange } from '../src/model';
import { agent, provider, status, task } from './fixtures';

describe('AgentModel: agentStatus', () => {
  it('first snapshot refreshes the root; an identical one changes nothing', () => {
    const m = new AgentModel();
    const c1 = m.applyStatus(status());
    expect(c1.root).toBe(true);
    expect(m.agents.map((a) => a.name)).toEqual(['explain', 'fix']);
    expect(m.providers.map((p) => p.name)).toEqual(['local']);
    const c2 = m.applyStatus(status());
    expect(isEmptyChange(c2)).toBe(true);
  });

  it('a changed agent refreshes only that agent', () => {
    const m = new AgentModel();
    m.applyStatus(status());
    const c = m.applyStatus(status({ agents: [agent({ name: 'explain', state: 'running', running: 1 }), agent({ name: 'fix', output: 'edit' })] }));
    expect(c.root).toBe(false);
    expect([...c.agents]).toEqual(['explain']);
    expect(c.tasks.size).toBe(0);
  });

  it('a new task refreshes its agent (children) and the summary, not the root', () => {
    const m = new AgentModel();
    m.applyStatus(status());
    const c = m.applyStatus(status({ tasks: [task({ id: 'a-1', state: 'running', startedAtMs: 2_000 })], running: 1 }));
    expect(c.root).toBe(false);
    expect([...c.agents]).toEqual(['explain']);
    expect(c.summary).toBe(true);
    expect(m.tasksOf('explain').map((t) => t.id)).toEqual(['a-1']);
    expect(m.summary().running).toBe(1);
  });

  it('a task whose details change (same state) refreshes only the task', () => {
    const m = new AgentModel();
    m.applyStatus(status({ tasks: [task({ id: 'a-1', state: 'running' })] }));
    const c = m.applyTaskEvent({ type: 'state', task: task({ id: 'a-1', state: 'running', provider: 'local', retries: 1 }) });
    expect([...c.tasks]).toEqual(['a-1']);
    expect(c.agents.size).toBe(0);
    expect(c.root).toBe(false);
  });

  it('provider circuit changes refresh the providers node and the summary', () => {
    const m = new AgentModel();
    m.applyStatus(status());
    const c = m.applyStatus(status({ providers: [provider({ name: 'local', circuit: 'open', consecutiveFailures: 5 })] }));
    expect(c.providers).toBe(true);
    expect(c.summary).toBe(true);
    expect(c.root).toBe(false);
    expect(m.summary().openCircuits.map((p) => p.name)).toEqual(['local']);
  });

  it('an added agent refreshes the root', () => {
    const m = new AgentModel();
    m.applyStatus(status());
    const c = m.applyStatus(status({ agents: [agent({ name: 'explain' }), agent({ name: 'fix' }), agent({ name: 'mine' })] }));
    expect(c.root).toBe(true);
  });

  it('never moves a finished task back to an active state (stale snapshot)', () => {
    const m = new AgentModel();
    m.applyTaskEvent({ type: 'state', task: task({ id: 'a-1', state: 'succeeded', finishedAtMs: 5_000 }) });
    m.applyStatus(status({ tasks: [task({ id: 'a-1', state: 'running' })] }));
    expect(m.task('a-1')?.state).toBe('succeeded');
  });

  it('keeps only the newest finished tasks per agent, and every active one', () => {
    const m = new AgentModel({ finishedPerAgent: 2 });
    for (let i = 1; i <= 5; i++) {
      m.applyTaskEvent({ type: 'state', task: task({ id: `a-${i}`, state: 'succeeded', createdAtMs: i }) });
    }
    m.applyTaskEvent({ type: 'state', task: task({ id: 'a-0', state: 'running', createdAtMs: 0 }) });
    expect(m.tasksOf('explain').map((t) => t.id)).toEqual(['a-5', 'a-4', 'a-0']);
  });

  it('reports tasks that start waiting for approval and tasks that finish', () => {
    const m = new AgentModel();
    const c1 = m.applyTaskEvent({ type: 'state', task: task({ id: 'a-1', agent: 'fix', output: 'edit', state: 'awaiting_approval' }) });
    expect([...c1.awaiting]).toEqual(['a-1']);
    expect(m.summary().awaitingApproval).toBe(1);
    const c2 = m.applyTaskEvent({ type: 'state', task: task({ id: 'a-1', agent: 'fix', output: 'edit', state: 'succeeded' }) });
    expect([...c2.finished]).toEqual(['a-1']);
    expect(c2.awaiting.size).toBe(0);
  });

  it('counts: awaiting approval is not counted as running', () => {
    const m = new AgentModel();
    m.applyStatus(
      status({
        tasks: [task({ id: 'a-1', state: 'running' }), task({ id: 'a-2', state: 'awaiting_approval' }), task({ id: 'a-3' })],
        running: 2,
        queued: 1,
      }),
    );
    const s = m.summary();
    expect(s).toMatchObject({ running: 1, queued: 1, awaitingApproval: 1 });
  });

  it('task events move the counts at once, the next snapshot has the last word', () => {
    const m = new AgentModel();
    m.applyStatus(status());
    m.applyTaskEvent({ type: 'state', task: task({ id: 'a-1' }) });
    expect(m.agent('explain')).toMatchObject({ queued: 1, running: 0, state: 'idle' });
    expect(m.summary()).toMatchObject({ queued: 1, running: 0 });
    m.applyTaskEvent({ type: 'state', task: task({ id: 'a-1', state: 'running' }) });
    expect(m.agent('explain')).toMatchObject({ queued: 0, running: 1, state: 'running' });
    expect(m.summary()).toMatchObject({ queued: 0, running: 1 });
    const c = m.applyTaskEvent({ type: 'state', task: task({ id: 'a-1', state: 'succeeded' }) });
    expect([...c.agents]).toEqual(['explain']);
    expect(m.agent('explain')).toMatchObject({ running: 0, state: 'idle' });
    expect(m.summary().running).toBe(0);
    m.applyStatus(status({ agents: [agent({ name: 'explain', running: 2, state: 'running' }), agent({ name: 'fix', output: 'edit' })], running: 2 }));
    expect(m.agent('explain')?.running).toBe(2);
  });

  it('orphan agents: tasks of an agent no longer configured', () => {
    const m = new AgentModel();
    m.applyStatus(status({ tasks: [task({ id: 'a-1', agent: 'gone', state: 'failed' })] }));
    expect(m.orphanAgents()).toEqual(['gone']);
  });
});

describe('AgentModel: streamed text', () => {
  it('appends chunks in order and ignores duplicates', () => {
    const m = new AgentModel();
    m.applyTaskEvent({ type: 'chunk', taskId: 't', seq: 1, text: 'Hel' });
    m.applyTaskEvent({ type: 'chunk', taskId: 't', seq: 2, text: 'lo' });
    const dup = m.applyTaskEvent({ type: 'chunk', taskId: 't', seq: 2, text: 'lo' });
    expect(dup.text.size).toBe(0);
    expect(m.text('t')).toMatchObject({ text: 'Hello', seq: 2, incomplete: false });
  });

  it('marks a gap as incomplete', () => {
    const m = new AgentModel();
    m.applyTaskEvent({ type: 'chunk', taskId: 't', seq: 1, text: 'a' });
    m.applyTaskEvent({ type: 'chunk', taskId: 't', seq: 3, text: 'c' });
    expect(m.text('t')).toMatchObject({ text: 'ac', incomplete: true });
  });

  it('joining mid-stream is a gap too', () => {
    const m = new AgentModel();
    m.applyTaskEvent({ type: 'chunk', taskId: 't', seq: 4, text: 'd' });
    expect(m.text('t')?.incomplete).toBe(true);
  });

  it('reset discards the text so far and continues the sequence', () => {
    const m = new AgentModel();
    m.applyTaskEvent({ type: 'chunk', taskId: 't', seq: 1, text: 'wrong answer' });
    const c = m.applyTaskEvent({ type: 'reset', taskId: 't', seq: 2, reason: 'provider local failed' });
    expect([...c.text]).toEqual(['t']);
    m.applyTaskEvent({ type: 'chunk', taskId: 't', seq: 3, text: 'right' });
    expect(m.text('t')).toMatchObject({ text: 'right', incomplete: false, resetReason: 'provider local failed' });
  });

  it('the final record replaces the text and later chunks are ignored', () => {
    const m = new AgentModel();
    m.applyTaskEvent({ type: 'chunk', taskId: 'a-1', seq: 1, text: 'par' });
    m.applyTaskEvent({ type: 'chunk', taskId: 'a-1', seq: 3, text: 'al' });
    const c = m.applyDetail({
      ...task({ id: 'a-1', state: 'succeeded' }),
      text: 'partial answer, complete',
      edit: null,
      diagnostics: [],
      approval: null,
    });
    expect([...c.text]).toEqual(['a-1']);
    expect(m.text('a-1')).toMatchObject({ text: 'partial answer, complete', incomplete: false, final: true });
    m.applyTaskEvent({ type: 'chunk', taskId: 'a-1', seq: 9, text: 'late' });
    expect(m.text('a-1')?.text).toBe('partial answer, complete');
    expect(m.task('a-1')?.state).toBe('succeeded');
  });

  it('the record of a running task does not replace the streamed text (no duplicated chunks)', () => {
    const m = new AgentModel();
    m.applyTaskEvent({ type: 'chunk', taskId: 'a-1', seq: 1, text: 'Hello ' });
    // the server's record already holds "world", whose chunk is still on its way
    m.applyDetail({ ...task({ id: 'a-1', state: 'running' }), text: 'Hello world', edit: null, diagnostics: [], approval: null });
    m.applyTaskEvent({ type: 'chunk', taskId: 'a-1', seq: 2, text: 'world' });
    expect(m.text('a-1')?.text).toBe('Hello world');
    expect(m.task('a-1')?.state).toBe('running');
  });

  it('clear forgets everything and asks for a full refresh', () => {
    const m = new AgentModel();
    m.applyStatus(status({ tasks: [task({ id: 'a-1' })] }));
    m.applyTaskEvent({ type: 'chunk', taskId: 'a-1', seq: 1, text: 'x' });
    const c = m.clear();
    expect(c.root).toBe(true);
    expect(m.agents).toEqual([]);
    expect(m.text('a-1')).toBeUndefined();
  });
});

describe('AgentModel: agent definitions', () => {
  it('builds idle agents before any status, keeping live counts afterwards', () => {
    const m = new AgentModel();
    const def = {
      name: 'review',
      description: 'Review on save',
      providers: ['local'],
      model: null,
      systemPrompt: '',
      prompt: '',
      output: 'diagnostics' as const,
      approval: 'manual' as const,
      triggers: ['onSave' as const],
      concurrency: 1,
      priority: 0,
      ratePerMinute: 6,
      debounceMs: 1500,
      contextBudgetTokens: 4096,
      builtin: true,
    };
    const c = m.applyAgentDefs([def]);
    expect(c.root).toBe(true);
    expect(m.agent('review')).toMatchObject({ state: 'idle', background: true, running: 0, output: 'diagnostics' });
    m.applyStatus(status({ agents: [agent({ name: 'review', state: 'running', running: 1, background: true })] }));
    m.applyAgentDefs([{ ...def, description: 'Reviews' }]);
    expect(m.agent('review')).toMatchObject({ state: 'running', running: 1, description: 'Reviews' });
  });
});

describe('server restarts', () => {
  it('keep the tasks and their text, drop agents and providers', () => {
    const m = new AgentModel();
    m.applyStatus(status({ tasks: [task({ id: 's-1', state: 'succeeded', finishedAtMs: 2_000 })] }));
    m.applyTaskEvent({ type: 'chunk', taskId: 's-1', seq: 1, text: 'the answer' });
    const change = m.serverStopped();
    expect(change.root).toBe(true);
    expect(m.agents).toEqual([]);
    expect(m.providers).toEqual([]);
    expect(m.task('s-1')?.state).toBe('succeeded');
    expect(m.text('s-1')?.text).toBe('the answer');
    // The next server's task list updates a task that was running when it stopped.
    m.applyTaskEvent({ type: 'state', task: task({ id: 's-2', state: 'running' }) });
    m.serverStopped();
    m.applyTaskEvent({ type: 'state', task: task({ id: 's-2', state: 'failed', error: 'interrupted' }) });
    expect(m.task('s-2')?.state).toBe('failed');
    // A task the new server does not know (no audit log) ends as interrupted.
    m.applyTaskEvent({ type: 'state', task: task({ id: 's-3', state: 'awaiting_approval', output: 'edit' }) });
    m.serverStopped();
    m.settleUnknown(new Set(['s-1', 's-2']), 9_000);
    expect(m.task('s-3')?.state).toBe('failed');
    expect(m.summary().awaitingApproval).toBe(0);
  });
});
