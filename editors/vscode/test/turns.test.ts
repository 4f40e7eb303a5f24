import { describe, expect, it } from 'vitest';
import { AgentModel } from '../src/model';
import { parseFromWebview } from '../src/panel/messages';
import { conversation, conversationTurns, taskLabel, type TurnRequest, turnView } from '../src/panel/turns';
import { task } from './fixtures';

const range = (a: number, b: number) => ({ start: { line: a, character: 0 }, end: { line: b, character: 0 } });

function modelWith(...tasks: ReturnType<typeof task>[]): AgentModel {
  const m = new AgentModel();
  for (const t of tasks) m.applyTaskEvent({ type: 'state', task: t });
  return m;
}

describe('answer panel turns', () => {
  it('label a task as agent #n, the same label everywhere', () => {
    expect(taskLabel({ agent: 'explain', id: '19a2b3c4d5e-42' })).toBe('explain #42');
  });

  it('assemble a streaming turn: question, target chip, live header, text so far, Cancel', () => {
    const t = task({ id: 's-3', state: 'running', startedAtMs: 1_000, provider: 'local', model: 'smollm2', tokensIn: 812, tokensOut: null });
    const m = modelWith(t);
    m.applyTaskEvent({ type: 'chunk', taskId: 's-3', seq: 1, text: 'It adds ' });
    m.applyTaskEvent({ type: 'chunk', taskId: 's-3', seq: 2, text: 'two numbers.' });
    const req: TurnRequest = { question: 'What does this do?', target: { uri: 'file:///ws/src/calc.py', range: range(5, 9) } };
    const v = turnView(m.task('s-3')!, m, req, 3_500);
    expect(v.label).toBe('explain #3');
    expect(v.phase).toBe('streaming');
    expect(v.question).toBe('What does this do?');
    expect(v.text).toBe('It adds two numbers.');
    expect(v.facts).toEqual(['local/smollm2', '2.5 s', '812 → ? tokens']);
    expect(v.chips).toEqual([{ label: 'calc.py:6–9', title: 'The code the question is about', uri: 'file:///ws/src/calc.py', range: range(5, 9) }]);
    expect(v.canCancel).toBe(true);
    expect(v.canRetry).toBe(false);
    expect(v.canFollowUp).toBe(false);
  });

  it('context chips name each item with its reason and tokens', () => {
    const m = modelWith(task({ id: 's-1', state: 'succeeded', finishedAtMs: 2_000, startedAtMs: 1_000 }));
    const req: TurnRequest = {
      question: 'q',
      context: [{ uri: 'file:///ws/src/money.py', range: { start: { line: 10, character: 4 }, end: { line: 10, character: 30 } }, kind: 'definition', reason: 'defines Money (imported)', tokens: 41 }],
    };
    const v = turnView(m.task('s-1')!, m, req, 5_000);
    expect(v.chips).toEqual([
      { label: 'money.py:11 · 41 tok', title: 'definition: defines Money (imported)', uri: 'file:///ws/src/money.py', range: req.context![0].range },
    ]);
    expect(v.canFollowUp).toBe(true);
  });

  it('a failed turn shows its error and offers Retry; a restarted stream says so', () => {
    const m = modelWith(task({ id: 's-2', state: 'running', startedAtMs: 1_000 }));
    m.applyTaskEvent({ type: 'chunk', taskId: 's-2', seq: 1, text: 'partial' });
    m.applyTaskEvent({ type: 'reset', taskId: 's-2', seq: 2, reason: 'provider local failed: connect' });
    m.applyTaskEvent({ type: 'state', task: task({ id: 's-2', state: 'failed', startedAtMs: 1_000, finishedAtMs: 2_000, error: 'all providers failed' }) });
    const v = turnView(m.task('s-2')!, m, undefined, 9_000);
    expect(v.phase).toBe('failed');
    expect(v.error).toBe('all providers failed');
    expect(v.canRetry).toBe(true);
    expect(v.canCancel).toBe(false);
    expect(v.notices[0]).toContain('restarted');
    // A task of another window or an earlier session: the question says what ran where.
    expect(v.question).toBe('explain on main.rs');
  });

  it('a conversation is the chain of follow-ups, oldest first, from any of its turns', () => {
    const requests = new Map<string, TurnRequest>([
      ['a', { question: 'first' }],
      ['b', { question: 'second', parentTaskId: 'a' }],
      ['c', { question: 'third', parentTaskId: 'b' }],
      ['x', { question: 'unrelated' }],
    ]);
    expect(conversation('a', requests)).toEqual(['a', 'b', 'c']);
    expect(conversation('c', requests)).toEqual(['a', 'b', 'c']);
    expect(conversation('x', requests)).toEqual(['x']);
    // A cycle (a corrupted record) ends.
    const loop = new Map<string, TurnRequest>([
      ['p', { question: '', parentTaskId: 'q' }],
      ['q', { question: '', parentTaskId: 'p' }],
    ]);
    expect(conversation('p', loop).sort()).toEqual(['p', 'q']);
    const m = modelWith(task({ id: 'a' }), task({ id: 'b' }));
    expect(conversationTurns('b', m, requests, 0).map((t) => t.question)).toEqual(['first', 'second']);
    expect(conversationTurns(undefined, m, requests, 0)).toEqual([]);
  });
});

describe('messages from the webview are checked', () => {
  it('accepts the known shapes', () => {
    expect(parseFromWebview({ type: 'cancel', taskId: 't' })).toEqual({ type: 'cancel', taskId: 't' });
    expect(parseFromWebview({ type: 'followUp', parentTaskId: null, text: 'q' })).toEqual({ type: 'followUp', parentTaskId: null, text: 'q' });
    const r = { start: { line: 1, character: 0 }, end: { line: 2, character: 3 } };
    expect(parseFromWebview({ type: 'open', uri: 'file:///a', range: r })).toEqual({ type: 'open', uri: 'file:///a', range: r });
  });

  it('rejects anything else', () => {
    for (const bad of [null, 'x', {}, { type: 'cancel' }, { type: 'apply', taskId: 't' }, { type: 'open', uri: 'file:///a', range: { start: { line: -1, character: 0 }, end: { line: 0, character: 0 } } }, { type: 'eval', code: '1' }]) {
      expect(parseFromWebview(bad)).toBeUndefined();
    }
  });
});
