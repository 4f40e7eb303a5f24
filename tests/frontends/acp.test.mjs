// The ACP front end (`infinity-matrix acp`) driven by the official Agent Client Protocol
// TypeScript SDK's client app over newline-delimited JSON on the child's stdin/stdout, against
// the Python fixture project and a mock Ollama provider on 127.0.0.1.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';

import * as acp from '@agentclientprotocol/sdk';

import { start as startMock } from './mock-provider.mjs';
import { TEST_TIMEOUT, lines, makeWorkspace, sleep, spawnServer, until, within, withStderr } from './harness.mjs';

const REQ = 25_000; // bound of one ACP request

/**
 * An ACP client connected to a spawned `infinity-matrix acp`. Collects session updates per
 * session, answers permission requests from `policy`, serves fs/read_text_file and
 * fs/write_text_file from disk, and keeps every raw message the agent sent.
 */
function startAcp(w) {
  const srv = spawnServer(['acp'], { cwd: w.ws, env: w.env });
  const state = {
    srv,
    updates: [], // {sessionId, update}
    raw: [], // every JSON-RPC message from the agent, as received
    permissionRequests: [], // params
    policy: 'reject', // 'allow' | 'reject'
    writes: [], // {path, content}
    reads: [], // {path}
  };
  const tap = new TransformStream({
    transform(msg, controller) {
      state.raw.push(msg);
      controller.enqueue(msg);
    },
  });
  const stream = acp.ndJsonStream(Writable.toWeb(srv.child.stdin), Readable.toWeb(srv.child.stdout));
  const tapped = { writable: stream.writable, readable: stream.readable.pipeThrough(tap) };

  const app = acp
    .client({ name: 'infinity-matrix-e2e' })
    .onNotification(acp.methods.client.session.update, ({ params }) => {
      state.updates.push({ sessionId: params.sessionId, update: params.update });
    })
    .onRequest(acp.methods.client.session.requestPermission, ({ params }) => {
      state.permissionRequests.push(params);
      const want = state.policy === 'allow' ? 'allow_once' : 'reject_once';
      const prefix = state.policy === 'allow' ? 'allow' : 'reject';
      const option = params.options.find((o) => o.kind === want) ?? params.options.find((o) => String(o.kind).startsWith(prefix));
      if (!option) return { outcome: { outcome: 'cancelled' } };
      return { outcome: { outcome: 'selected', optionId: option.optionId } };
    })
    .onRequest(acp.methods.client.fs.writeTextFile, ({ params }) => {
      if (!params.path.startsWith(w.ws + '/')) throw new Error(`refusing a write outside the workspace: ${params.path}`);
      state.writes.push({ path: params.path, content: params.content });
      fs.writeFileSync(params.path, params.content);
      return {};
    })
    .onRequest(acp.methods.client.fs.readTextFile, ({ params }) => {
      state.reads.push({ path: params.path });
      let content = fs.readFileSync(params.path, 'utf8');
      if (params.line || params.limit) {
        const all = content.split('\n');
        const from = Math.max(0, (params.line ?? 1) - 1);
        content = all.slice(from, params.limit ? from + params.limit : undefined).join('\n');
      }
      return { content };
    });
  const connection = app.connect(tapped);
  state.connection = connection;
  state.agent = connection.agent;
  state.forSession = (sessionId) => state.updates.filter((u) => u.sessionId === sessionId).map((u) => u.update);
  state.rawUpdatesFor = (sessionId) =>
    state.raw.filter((m) => m.method === 'session/update' && m.params?.sessionId === sessionId);
  state.close = async () => {
    try {
      connection.close();
    } catch {
      /* closed */
    }
    await srv.kill();
  };
  return state;
}

function textChunks(updates) {
  return updates
    .filter((u) => u.sessionUpdate === 'agent_message_chunk' && u.content?.type === 'text')
    .map((u) => u.content.text)
    .join('');
}

/** toolCallId -> the last status it was given (tool_call, then tool_call_update). */
function toolCallStatuses(updates) {
  const status = new Map();
  for (const u of updates) {
    if (u.sessionUpdate === 'tool_call') status.set(u.toolCallId, u.status ?? 'pending');
    if (u.sessionUpdate === 'tool_call_update' && u.status) status.set(u.toolCallId, u.status);
  }
  return status;
}

function summary(updates) {
  return updates
    .map((u) => {
      if (u.sessionUpdate === 'agent_message_chunk') return `chunk ${JSON.stringify(u.content?.text ?? u.content)}`;
      if (u.sessionUpdate === 'tool_call' || u.sessionUpdate === 'tool_call_update')
        return `${u.sessionUpdate} ${u.toolCallId} ${u.status ?? ''} ${u.title ?? ''}`;
      return u.sessionUpdate;
    })
    .join('\n')
    .slice(0, 3000);
}

describe('ACP over stdio', () => {
  let mock;
  let w;
  let c;
  let appText;
  let welcome; // lines 4-6 of app.py: the welcome function
  const ctx = (fn) => () => withStderr(() => c?.srv.stderr, fn);

  const fileUri = (name) => pathToFileURL(w.file(name)).href;

  async function newSession() {
    const res = await within(c.agent.request(acp.methods.agent.session.new, { cwd: w.ws, mcpServers: [] }), REQ, 'session/new');
    assert.equal(typeof res.sessionId, 'string', `session/new: ${JSON.stringify(res)}`);
    return res.sessionId;
  }

  async function prompt(sessionId, blocks) {
    const before = mock.requests.length;
    const res = await within(c.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: blocks }), REQ, 'session/prompt');
    await sleep(100); // let the last notifications be handled
    return { res, updates: c.forSession(sessionId), sent: mock.requests.slice(before) };
  }

  /** Every session/update the agent sent for this session passed the SDK's schema. */
  async function allUpdatesValid(sessionId) {
    await until(() => c.forSession(sessionId).length >= c.rawUpdatesFor(sessionId).length, 2000, 'updates to be handled').catch(() => {});
    const raw = c.rawUpdatesFor(sessionId);
    const parsed = c.forSession(sessionId);
    assert.equal(
      parsed.length,
      raw.length,
      `some session/update notifications failed the ACP schema and were dropped by the SDK:\n${JSON.stringify(
        raw.map((m) => m.params.update),
        null,
        1,
      ).slice(0, 3000)}`,
    );
  }

  const selectionBlock = () => ({
    type: 'resource',
    resource: { uri: fileUri('app.py'), mimeType: 'text/x-python', text: welcome },
  });

  before(
    async () => {
      mock = await startMock();
      w = makeWorkspace(mock.url);
      appText = w.read('app.py');
      welcome = lines(appText, 4, 6);
      c = startAcp(w);
    },
    { timeout: TEST_TIMEOUT },
  );
  after(
    async () => {
      await c?.close();
      await mock?.close();
      w?.cleanup();
    },
    { timeout: TEST_TIMEOUT },
  );

  test('initialize: protocol 1, embedded context', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const res = await within(
      c.agent.request(acp.methods.agent.initialize, {
        protocolVersion: 1,
        clientCapabilities: { fs: { readTextFile: true, writeTextFile: true } },
        clientInfo: { name: 'infinity-matrix-e2e', version: '0.0.0' },
      }),
      REQ,
      'initialize',
    );
    assert.equal(res.protocolVersion, 1, `initialize: ${JSON.stringify(res)}`);
    assert.equal(res.agentCapabilities?.promptCapabilities?.embeddedContext, true, `initialize: ${JSON.stringify(res)}`);
  }));

  test('session/new, and the slash commands arrive', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const sessionId = await newSession();
    const cmds = await until(
      () => c.forSession(sessionId).find((u) => u.sessionUpdate === 'available_commands_update'),
      10_000,
      'an available_commands_update',
    );
    const names = cmds.availableCommands.map((x) => x.name);
    for (const n of ['explain', 'fix', 'document', 'tests', 'refactor', 'review']) {
      assert.ok(names.includes(n), `command ${n} missing from ${JSON.stringify(names)}`);
    }
    for (const x of cmds.availableCommands) assert.ok(x.description, `command ${x.name} has no description`);
  }));

  test('/explain with the selection embedded: streamed answer, tool calls, cross-file context', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const sessionId = await newSession();
    const { res, updates, sent } = await prompt(sessionId, [{ type: 'text', text: '/explain what does this do?' }, selectionBlock()]);
    assert.equal(res.stopReason, 'end_turn', `stopReason: ${JSON.stringify(res)}\n${summary(updates)}`);
    assert.match(textChunks(updates), /forty-two/, `the answer did not stream:\n${summary(updates)}`);
    assert.ok(updates.some((u) => u.sessionUpdate === 'tool_call'), `no tool_call update:\n${summary(updates)}`);
    assert.ok(
      updates.some((u) => u.sessionUpdate === 'tool_call_update' && u.status === 'completed'),
      `no tool_call_update completed:\n${summary(updates)}`,
    );
    for (const [id, status] of toolCallStatuses(updates)) {
      assert.equal(status, 'completed', `tool call ${id} ended ${status}:\n${summary(updates)}`);
    }
    const calls = updates.filter((u) => u.sessionUpdate === 'tool_call');
    assert.ok(calls.some((u) => u.kind === 'read'), `no context-capture tool call (kind read):\n${summary(updates)}`);
    assert.ok(calls.some((u) => u.kind === 'fetch'), `no provider-attempt tool call (kind fetch):\n${summary(updates)}`);
    assert.ok(sent.length > 0, 'the provider got no request');
    assert.ok(
      sent.some((r) => r.text.includes('class User') && r.text.includes('what does this do?') && r.text.includes('def welcome')),
      `no provider request held the selection, "class User" (models.py) and the question:\n${sent.map((r) => r.text).join('\n----\n').slice(0, 4000)}`,
    );
    await allUpdatesValid(sessionId);
  }));

  test('/explain with a resource_link answers about the linked file', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const sessionId = await newSession();
    const { res, updates, sent } = await prompt(sessionId, [
      { type: 'text', text: '/explain' },
      { type: 'resource_link', uri: fileUri('app.py'), name: 'app.py' },
    ]);
    assert.equal(res.stopReason, 'end_turn', `stopReason: ${JSON.stringify(res)}\n${summary(updates)}`);
    assert.match(textChunks(updates), /forty-two/, `no answer:\n${summary(updates)}`);
    assert.ok(
      sent.some((r) => r.text.includes('User(name)')),
      `no provider request held app.py's code:\n${sent.map((r) => r.text).join('\n----\n').slice(0, 4000)}`,
    );
  }));

  test('a plain prompt runs the default agent (explain)', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const sessionId = await newSession();
    const { res, updates, sent } = await prompt(sessionId, [{ type: 'text', text: 'what does this do?' }, selectionBlock()]);
    assert.equal(res.stopReason, 'end_turn', `stopReason: ${JSON.stringify(res)}\n${summary(updates)}`);
    assert.match(textChunks(updates), /forty-two/, `no answer:\n${summary(updates)}`);
    assert.ok(
      sent.some((r) => r.text.includes('Explain what this') && r.text.includes('what does this do?')),
      `the provider request was not the explain template:\n${sent.map((r) => r.text).join('\n----\n').slice(0, 4000)}`,
    );
  }));

  test('cancel: session/cancel mid-stream ends the turn with "cancelled"', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const sessionId = await newSession();
    const before = mock.requests.length;
    const pending = c.agent.request(acp.methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: 'text', text: '/explain SLOWREPLY' }, selectionBlock()],
    });
    pending.catch(() => {}); // observed below
    await until(
      () => c.forSession(sessionId).some((u) => u.sessionUpdate === 'agent_message_chunk'),
      15_000,
      'the first agent_message_chunk of the slow reply',
    );
    const t0 = Date.now();
    await c.agent.notify(acp.methods.agent.session.cancel, { sessionId });
    const res = await within(pending, 5000, 'the cancelled prompt to resolve');
    assert.equal(res.stopReason, 'cancelled', `stopReason: ${JSON.stringify(res)}`);
    assert.ok(Date.now() - t0 < 5000);
    const slow = mock.requests.slice(before).find((r) => r.text.includes('SLOWREPLY'));
    assert.ok(slow, 'the provider never got the slow request');
    await until(() => slow.closedEarly, 5000, 'the provider request to be dropped after the cancel');
    assert.ok(!/tick tick tick tick tick tick tick tick tick tick tick tick tick tick tick tick tick tick tick tick/.test(textChunks(c.forSession(sessionId))), 'the reply kept streaming after the cancel');
  }));

  test('/fix, permission rejected: a diff is offered, nothing is written', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const sessionId = await newSession();
    c.policy = 'reject';
    const nPerm = c.permissionRequests.length;
    const nWrites = c.writes.length;
    const { res, updates } = await prompt(sessionId, [{ type: 'text', text: '/fix' }, selectionBlock()]);
    const perms = c.permissionRequests.slice(nPerm);
    assert.equal(perms.length, 1, `expected one permission request, got ${perms.length}:\n${summary(updates)}`);
    const diff = (perms[0].toolCall?.content ?? []).find((x) => x.type === 'diff');
    assert.ok(diff, `the permission request carries no diff: ${JSON.stringify(perms[0]).slice(0, 2000)}`);
    assert.ok(String(diff.path).endsWith('app.py'), `diff.path: ${diff.path}`);
    assert.match(String(diff.oldText), /def welcome/, 'diff.oldText');
    assert.match(String(diff.newText), /# fixed/, 'diff.newText lacks the edit');
    assert.ok(['end_turn', 'refusal'].includes(res.stopReason), `stopReason: ${JSON.stringify(res)}`);
    assert.equal(c.writes.length, nWrites, `fs/write_text_file was called after a rejection: ${JSON.stringify(c.writes.slice(nWrites))}`);
    assert.equal(w.read('app.py'), appText, 'app.py changed after a rejection');
  }));

  test('/fix, permission allowed: the edit is written', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const sessionId = await newSession();
    c.policy = 'allow';
    const nPerm = c.permissionRequests.length;
    const nWrites = c.writes.length;
    const { res, updates } = await prompt(sessionId, [{ type: 'text', text: '/fix' }, selectionBlock()]);
    const perms = c.permissionRequests.slice(nPerm);
    assert.equal(perms.length, 1, `expected one permission request, got ${perms.length}:\n${summary(updates)}`);
    assert.ok((perms[0].toolCall?.content ?? []).some((x) => x.type === 'diff'), 'no diff in the permission request');
    assert.equal(res.stopReason, 'end_turn', `stopReason: ${JSON.stringify(res)}\n${summary(updates)}`);
    const now = w.read('app.py');
    assert.match(now, /return user\.greeting\(\) {2}# fixed/, `app.py lacks the edit:\n${now}`);
    assert.match(now, /^from models import User$/m, `the rest of app.py was lost:\n${now}`);
    assert.equal(now.split('def welcome').length - 1, 1, `welcome defined more than once:\n${now}`);
    const writes = c.writes.slice(nWrites);
    if (writes.length > 0) {
      // Written through the client (fs/write_text_file): one write of app.py with the edit.
      assert.ok(writes.every((x) => x.path === w.file('app.py')), `writes: ${JSON.stringify(writes.map((x) => x.path))}`);
    }
    await allUpdatesValid(sessionId);
  }));

  test('the audit log records the tasks as run from the acp front end', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const srv = spawnServer(['audit', '--root', w.ws, '--json'], { cwd: w.ws, env: w.env });
    let out = '';
    srv.child.stdout.on('data', (d) => (out += d));
    const { code } = await within(srv.exited, 15_000, 'infinity-matrix audit');
    await withStderr(srv.stderr, async () => {
      assert.equal(code, 0, 'infinity-matrix audit failed');
      const entries = out.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
      assert.ok(entries.length > 0, 'the audit log is empty');
      assert.ok(
        entries.some((e) => e?.details?.front_end === 'acp'),
        `no audit entry with details.front_end === "acp":\n${out.slice(0, 3000)}`,
      );
      assert.ok(!entries.some((e) => e?.details?.front_end && e.details.front_end !== 'acp'), `an entry names another front end:\n${out.slice(0, 3000)}`);
    });
  }));
});
