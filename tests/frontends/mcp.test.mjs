// The MCP front end (`infinity-matrix mcp`) driven by the official MCP TypeScript SDK's client:
// over stdio and over Streamable HTTP (loopback, bearer token), against the Python fixture
// project and a mock Ollama provider on 127.0.0.1.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';

import { start as startMock } from './mock-provider.mjs';
import { BIN, TEST_TIMEOUT, Tail, killPid, makeWorkspace, spawnServer, until, within, withStderr } from './harness.mjs';

// The seven of the design, plus `approve` (decides an edit that waits under a manual policy).
const EXPECTED_TOOLS = ['context', 'symbols', 'workspace_symbols', 'definition', 'run_agent', 'approve', 'tasks', 'audit'];
const CALL = { timeout: 25_000 }; // per-request bound of the SDK
// The `welcome` function of app.py: lines 4-6, line 6 is "    return user.greeting()" (26 chars).
const WELCOME_RANGE = { line: 4, column: 1, end_line: 6, end_column: 27 };

/** An MCP client over stdio to `infinity-matrix mcp --root <ws>`. */
async function connectStdio(w, extraArgs = []) {
  const transport = new StdioClientTransport({
    command: BIN,
    args: ['mcp', '--root', w.ws, ...extraArgs],
    env: w.env,
    cwd: w.ws,
    stderr: 'pipe',
  });
  const stderr = new Tail();
  transport.stderr?.on('data', (c) => stderr.push(c));
  const client = new Client({ name: 'infinity-matrix-e2e', version: '0.0.0' }, { capabilities: {} });
  await withStderr(stderr, () => within(client.connect(transport, CALL), 20_000, 'MCP initialize over stdio'));
  const pid = transport.pid;
  return {
    client,
    transport,
    stderr,
    async close() {
      await within(client.close(), 8000, 'closing the MCP client').catch(() => {});
      killPid(pid);
    },
  };
}

/**
 * Registers hooks that start a mock provider, a workspace (`makeWorkspace` options) and an MCP
 * client over stdio before a suite's tests, hand them to `set`, and stop them all after.
 */
function withStdioServer(options, set) {
  const s = {};
  before(async () => {
    s.mock = await startMock();
    s.w = makeWorkspace(s.mock.url, options);
    s.mcp = await connectStdio(s.w);
    set(s);
  }, { timeout: TEST_TIMEOUT });
  after(async () => {
    await s.mcp?.close();
    await s.mock?.close();
    s.w?.cleanup();
  }, { timeout: TEST_TIMEOUT });
}

function textOf(result) {
  return (result?.content ?? [])
    .filter((c) => c.type === 'text')
    .map((c) => c.text)
    .join('\n');
}

function describeResult(result) {
  return JSON.stringify(result, null, 1).slice(0, 3000);
}

/** Calls a tool and fails (with the result shown) when it reports an error. */
async function callOk(client, name, args) {
  const result = await client.callTool({ name, arguments: args }, undefined, CALL);
  assert.ok(!result.isError, `tool ${name}(${JSON.stringify(args)}) reported an error: ${describeResult(result)}`);
  return result;
}

function taskIdOf(t) {
  return t?.task_id ?? t?.id ?? t?.taskId;
}

describe('MCP over stdio', () => {
  let mock;
  let w;
  let mcp;
  let explainTaskId;
  const ctx = (fn) => () => withStderr(() => mcp?.stderr, fn);
  withStdioServer({}, (s) => ({ mock, w, mcp } = s));

  test('the server names itself and offers tools and prompts', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const caps = mcp.client.getServerCapabilities();
    assert.ok(caps?.tools, `server capabilities lack tools: ${JSON.stringify(caps)}`);
    assert.ok(caps?.prompts, `server capabilities lack prompts: ${JSON.stringify(caps)}`);
    const info = mcp.client.getServerVersion();
    assert.equal(typeof info?.name, 'string');
    assert.ok(info.name.length > 0, 'empty serverInfo.name');
  }));

  test('tools/list has exactly the documented tools, each with an object input schema', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const { tools } = await mcp.client.listTools(undefined, CALL);
    const names = tools.map((t) => t.name).sort();
    assert.deepEqual(names, [...EXPECTED_TOOLS].sort());
    for (const t of tools) {
      assert.equal(t.inputSchema?.type, 'object', `tool ${t.name}: inputSchema.type`);
      assert.ok(typeof t.description === 'string' && t.description.length > 0, `tool ${t.name} has no description`);
    }
  }));

  test('context: the cursor on User(name) in app.py brings class User from models.py', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const result = await callOk(mcp.client, 'context', { path: 'app.py', line: 5, column: 12 });
    const items = result.structuredContent?.items;
    assert.ok(Array.isArray(items), `structuredContent.items is not an array: ${describeResult(result)}`);
    const hit = items.find((i) => typeof i.path === 'string' && i.path.endsWith('models.py') && String(i.text).includes('class User'));
    assert.ok(hit, `no context item from models.py with "class User": ${describeResult(result)}`);
    assert.ok(result.content?.[0]?.type === 'text', 'content[0] is not text');
    assert.match(result.content[0].text, /class User/, 'the rendered context lacks class User');
  }));

  test('symbols: the outline of models.py', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const result = await callOk(mcp.client, 'symbols', { path: 'models.py' });
    const symbols = result.structuredContent?.symbols;
    assert.ok(Array.isArray(symbols), `structuredContent.symbols is not an array: ${describeResult(result)}`);
    const user = symbols.find((s) => s.name === 'User');
    assert.ok(user, `no symbol User: ${describeResult(result)}`);
    const childNames = (user.children ?? []).map((c) => c.name);
    assert.ok(childNames.includes('greeting'), `User's children lack greeting: ${JSON.stringify(childNames)}`);
    assert.ok(childNames.includes('__init__'), `User's children lack __init__: ${JSON.stringify(childNames)}`);
  }));

  test('workspace_symbols: "greet" finds greeting in models.py', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const result = await callOk(mcp.client, 'workspace_symbols', { query: 'greet' });
    const symbols = result.structuredContent?.symbols;
    assert.ok(Array.isArray(symbols), `structuredContent.symbols is not an array: ${describeResult(result)}`);
    const hit = symbols.find((s) => s.name === 'greeting' && String(s.path).endsWith('models.py'));
    assert.ok(hit, `no greeting in models.py: ${describeResult(result)}`);
  }));

  test('the index follows the disk without an editor: a new file, an edit, a deletion, an ignored file', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const find = async (query) => {
      const r = await callOk(mcp.client, 'workspace_symbols', { query });
      return (r.structuredContent?.symbols ?? []).filter((s) => s.name === query);
    };
    const added = path.join(w.ws, 'billing.py');
    fs.writeFileSync(added, 'def compute_invoice_total(items):\n    return sum(items)\n');
    await until(async () => (await find('compute_invoice_total')).length === 1, 10_000, 'the new file indexed');
    fs.writeFileSync(added, 'def compute_refund_total(items):\n    return -sum(items)\n');
    await until(async () => (await find('compute_refund_total')).length === 1 && (await find('compute_invoice_total')).length === 0, 10_000, 'the edit indexed');
    fs.mkdirSync(path.join(w.ws, 'build'), { recursive: true });
    fs.writeFileSync(path.join(w.ws, '.ignore'), 'build/\n');
    fs.writeFileSync(path.join(w.ws, 'build', 'generated.py'), 'def ignored_generated_helper():\n    pass\n');
    fs.unlinkSync(added);
    await until(async () => (await find('compute_refund_total')).length === 0, 10_000, 'the deletion indexed');
    assert.deepEqual(await find('ignored_generated_helper'), [], 'a file under an ignored folder was indexed');
  }));

  test('definition: by position and by name', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const byPos = await callOk(mcp.client, 'definition', { path: 'app.py', line: 5, column: 12 });
    const defs = byPos.structuredContent?.definitions;
    assert.ok(Array.isArray(defs) && defs.length > 0, `no definitions by position: ${describeResult(byPos)}`);
    assert.match(String(defs[0].text), /class User/, `definitions[0] by position: ${describeResult(byPos)}`);
    assert.ok(String(defs[0].path).endsWith('models.py'), `definitions[0].path: ${describeResult(byPos)}`);

    const byName = await callOk(mcp.client, 'definition', { name: 'User' });
    const defs2 = byName.structuredContent?.definitions;
    assert.ok(Array.isArray(defs2) && defs2.length > 0, `no definitions by name: ${describeResult(byName)}`);
    assert.match(String(defs2[0].text), /class User/, `definitions[0] by name: ${describeResult(byName)}`);
  }));

  test('a tool call with a missing file is an error result, not a crash', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const result = await mcp.client.callTool({ name: 'context', arguments: { path: 'nope.py', line: 1, column: 1 } }, undefined, CALL);
    assert.equal(result.isError, true, `expected isError for a missing file: ${describeResult(result)}`);
    assert.match(textOf(result), /nope\.py/, 'the error does not name the file');
    // still serving
    await callOk(mcp.client, 'symbols', { path: 'models.py' });
  }));

  test('run_agent explain: the answer, and the prompt carried cross-file context', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const before = mock.requests.length;
    const result = await callOk(mcp.client, 'run_agent', {
      agent: 'explain',
      path: 'app.py',
      line: 5,
      column: 12,
      prompt: 'what does this do?',
    });
    assert.match(textOf(result), /forty-two/, `the answer is not in the result: ${describeResult(result)}`);
    assert.equal(result.structuredContent?.state, 'succeeded', `state: ${describeResult(result)}`);
    explainTaskId = result.structuredContent?.task_id;
    assert.ok(explainTaskId !== undefined && explainTaskId !== null && explainTaskId !== '', `no task_id: ${describeResult(result)}`);
    const sent = mock.requests.slice(before);
    assert.ok(sent.length > 0, 'the provider got no request');
    assert.ok(
      sent.some((r) => r.text.includes('class User') && r.text.includes('what does this do?')),
      `no provider request held both "class User" (models.py context) and the prompt; got:\n${sent.map((r) => r.text).join('\n----\n').slice(0, 4000)}`,
    );
  }));

  test('tasks lists the explain run as succeeded', { timeout: TEST_TIMEOUT }, ctx(async () => {
    assert.ok(explainTaskId !== undefined, 'the run_agent test did not record a task id');
    const result = await callOk(mcp.client, 'tasks', {});
    const tasks = result.structuredContent?.tasks;
    assert.ok(Array.isArray(tasks), `structuredContent.tasks is not an array: ${describeResult(result)}`);
    const t = tasks.find((x) => String(taskIdOf(x)) === String(explainTaskId));
    assert.ok(t, `task ${explainTaskId} not listed: ${describeResult(result)}`);
    assert.equal(t.agent, 'explain');
    assert.equal(t.state, 'succeeded');
  }));

  test('audit of the task records the mcp front end', { timeout: TEST_TIMEOUT }, ctx(async () => {
    assert.ok(explainTaskId !== undefined, 'the run_agent test did not record a task id');
    const result = await callOk(mcp.client, 'audit', { task: explainTaskId });
    const entries = result.structuredContent?.entries;
    assert.ok(Array.isArray(entries) && entries.length > 0, `no audit entries: ${describeResult(result)}`);
    assert.ok(
      entries.some((e) => e?.details?.front_end === 'mcp'),
      `no audit entry with details.front_end === "mcp": ${describeResult(result)}`,
    );
  }));

  test('prompts: the agents\' templates, rendered for a position', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const { prompts } = await mcp.client.listPrompts(undefined, CALL);
    const names = prompts.map((p) => p.name);
    for (const n of ['explain', 'fix']) assert.ok(names.includes(n), `prompt ${n} missing from ${JSON.stringify(names)}`);
    const got = await mcp.client.getPrompt({ name: 'explain', arguments: { path: 'app.py', line: '5' } }, CALL);
    assert.ok(Array.isArray(got.messages) && got.messages.length > 0, `no messages: ${describeResult(got)}`);
    const text = got.messages.map((m) => (m.content?.type === 'text' ? m.content.text : '')).join('\n');
    assert.ok(text.length > 0, `no text in the prompt's messages: ${describeResult(got)}`);
    assert.match(text, /User\(name\)/, 'the rendered prompt lacks the code at app.py:5');
    assert.doesNotMatch(text, /\{\{\s*selection\s*\}\}/, 'the template was not rendered');
  }));

  test('run_agent fix under manual approval: a diff, nothing written', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const original = w.read('app.py');
    const result = await callOk(mcp.client, 'run_agent', { agent: 'fix', path: 'app.py', ...WELCOME_RANGE });
    const text = textOf(result);
    assert.match(text, /^--- a\/app\.py$/m, `no "--- a/app.py" in: ${describeResult(result)}`);
    assert.match(text, /^\+\+\+ b\/app\.py$/m, `no "+++ b/app.py" in: ${describeResult(result)}`);
    assert.match(text, /^\+.*# fixed/m, `the diff does not add the mock's edit: ${describeResult(result)}`);
    assert.equal(result.structuredContent?.applied, false, `applied: ${describeResult(result)}`);
    assert.equal(result.structuredContent?.state, 'awaiting_approval', `state: ${describeResult(result)}`);
    assert.equal(w.read('app.py'), original, 'app.py changed on disk without approval');
  }));

  test('approve: a rejected edit is not written, an accepted one is', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const original = w.read('app.py');
    const first = await callOk(mcp.client, 'run_agent', { agent: 'fix', path: 'app.py', ...WELCOME_RANGE });
    assert.equal(first.structuredContent?.state, 'awaiting_approval', `state: ${describeResult(first)}`);
    const rejected = await callOk(mcp.client, 'approve', { task: first.structuredContent.task_id, accept: false });
    assert.equal(rejected.structuredContent?.applied, false, `applied after a rejection: ${describeResult(rejected)}`);
    assert.notEqual(rejected.structuredContent?.state, 'awaiting_approval', `still waiting: ${describeResult(rejected)}`);
    assert.equal(w.read('app.py'), original, 'app.py changed after a rejection');

    const second = await callOk(mcp.client, 'run_agent', { agent: 'fix', path: 'app.py', ...WELCOME_RANGE });
    assert.equal(second.structuredContent?.state, 'awaiting_approval', `state: ${describeResult(second)}`);
    const accepted = await callOk(mcp.client, 'approve', { task: second.structuredContent.task_id, accept: true });
    assert.equal(accepted.structuredContent?.applied, true, `applied after acceptance: ${describeResult(accepted)}`);
    assert.equal(accepted.structuredContent?.state, 'succeeded', `state: ${describeResult(accepted)}`);
    const now = w.read('app.py');
    assert.match(now, /return user\.greeting\(\) {2}# fixed/, `app.py lacks the accepted edit:\n${now}`);
    assert.match(now, /^from models import User$/m, `the line outside the range was lost:\n${now}`);
    assert.equal(now.split('def welcome').length - 1, 1, `welcome defined more than once:\n${now}`);
  }));
});

describe('MCP: an edit agent with approval = "auto"', () => {
  let w;
  let mcp;
  withStdioServer({ extraUserToml: '[agents.fix]\napproval = "auto"\n' }, (s) => ({ w, mcp } = s));

  test('run_agent fix writes the edit to disk', { timeout: TEST_TIMEOUT }, () =>
    withStderr(() => mcp?.stderr, async () => {
      const result = await callOk(mcp.client, 'run_agent', { agent: 'fix', path: 'app.py', ...WELCOME_RANGE });
      assert.equal(result.structuredContent?.applied, true, `applied: ${describeResult(result)}`);
      const now = w.read('app.py');
      assert.match(now, /return user\.greeting\(\) {2}# fixed/, `app.py lacks the edit:\n${now}`);
      assert.match(now, /^from models import User$/m, `the line outside the range was lost:\n${now}`);
      assert.equal(now.split('def welcome').length - 1, 1, `welcome defined more than once:\n${now}`);
    }));
});

/** Spawns `mcp --http` and parses the URL it prints on stderr. */
async function startHttp(w, token) {
  const tokenFile = path.join(w.tmp, 'token');
  fs.writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
  const srv = spawnServer(['mcp', '--root', w.ws, '--http', '127.0.0.1:0', '--token-file', tokenFile], { cwd: w.ws, env: w.env });
  const m = await withStderr(srv.stderr, () =>
    Promise.race([
      srv.stderr.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+\/mcp)/, 20_000, '"listening on http://127.0.0.1:PORT/mcp"'),
      srv.exited.then(({ code, signal }) => {
        throw new Error(`mcp --http exited early (code ${code}, signal ${signal})`);
      }),
    ]),
  );
  return { srv, url: m[1] };
}

const INIT_BODY = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } },
};

describe('MCP over Streamable HTTP', () => {
  let mock;
  let w;
  let http;
  const token = crypto.randomBytes(24).toString('hex');
  const ctx = (fn) => () => withStderr(() => http?.srv.stderr, fn);

  before(
    async () => {
      mock = await startMock();
      w = makeWorkspace(mock.url);
      http = await startHttp(w, token);
    },
    { timeout: TEST_TIMEOUT },
  );
  after(
    async () => {
      await http?.srv.kill();
      await mock?.close();
      w?.cleanup();
    },
    { timeout: TEST_TIMEOUT },
  );

  const post = (headers) =>
    within(
      fetch(http.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
        body: JSON.stringify(INIT_BODY),
      }),
      10_000,
      `POST ${http.url}`,
    );

  test('the URL is on the loopback', { timeout: TEST_TIMEOUT }, ctx(async () => {
    assert.equal(new URL(http.url).hostname, '127.0.0.1');
  }));

  test('no Authorization header: 401, and the SDK client cannot connect', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const res = await post({});
    assert.equal(res.status, 401, `status without a token: ${res.status} ${await res.text()}`);
    const client = new Client({ name: 'no-token', version: '0' }, { capabilities: {} });
    const transport = new StreamableHTTPClientTransport(new URL(http.url));
    await assert.rejects(within(client.connect(transport, CALL), 15_000, 'connect without a token'));
    await client.close().catch(() => {});
  }));

  test('a wrong token: 401', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const res = await post({ authorization: `Bearer ${token}x` });
    assert.equal(res.status, 401, `status with a wrong token: ${res.status}`);
    const res2 = await post({ authorization: `Basic ${Buffer.from(`u:${token}`).toString('base64')}` });
    assert.equal(res2.status, 401, `status with Basic auth: ${res2.status}`);
    const client = new Client({ name: 'wrong-token', version: '0' }, { capabilities: {} });
    const transport = new StreamableHTTPClientTransport(new URL(http.url), {
      requestInit: { headers: { Authorization: `Bearer not-${token}` } },
    });
    await assert.rejects(within(client.connect(transport, CALL), 15_000, 'connect with a wrong token'));
    await client.close().catch(() => {});
  }));

  test('the right token: tools/list and context work', { timeout: TEST_TIMEOUT }, ctx(async () => {
    const client = new Client({ name: 'with-token', version: '0' }, { capabilities: {} });
    const transport = new StreamableHTTPClientTransport(new URL(http.url), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
    });
    try {
      await within(client.connect(transport, CALL), 15_000, 'connect with the token');
      const { tools } = await client.listTools(undefined, CALL);
      assert.deepEqual(tools.map((t) => t.name).sort(), [...EXPECTED_TOOLS].sort());
      const result = await callOk(client, 'context', { path: 'app.py', line: 5, column: 12 });
      const items = result.structuredContent?.items ?? [];
      assert.ok(
        items.some((i) => String(i.path).endsWith('models.py') && String(i.text).includes('class User')),
        `no models.py item with class User over HTTP: ${describeResult(result)}`,
      );
    } finally {
      await within(client.close(), 5000, 'close').catch(() => {});
    }
  }));
});

describe('MCP --http refuses a non-loopback address', () => {
  let w;
  after(() => w?.cleanup());

  test('--http 0.0.0.0:0 exits non-zero with a clear message', { timeout: TEST_TIMEOUT }, async () => {
    w = makeWorkspace('http://127.0.0.1:9');
    const tokenFile = path.join(w.tmp, 'token');
    fs.writeFileSync(tokenFile, 'secret-token\n', { mode: 0o600 });
    const srv = spawnServer(['mcp', '--root', w.ws, '--http', '0.0.0.0:0', '--token-file', tokenFile], { cwd: w.ws, env: w.env });
    try {
      const { code, signal } = await within(srv.exited, 15_000, 'mcp --http 0.0.0.0:0 to exit');
      await withStderr(srv.stderr, async () => {
        assert.equal(signal, null, `killed by ${signal}`);
        assert.notEqual(code, 0, 'exit code 0 for a non-loopback address');
        assert.match(srv.stderr.toString(), /loopback/i, 'stderr does not say the address must be on the loopback');
      });
    } finally {
      await srv.kill();
    }
  });
});

/** Sends one raw JSON-RPC initialize over stdio and returns the response object. */
async function rawInitialize(w, protocolVersion) {
  const srv = spawnServer(['mcp', '--root', w.ws], { cwd: w.ws, env: w.env });
  try {
    const response = new Promise((resolve, reject) => {
      let buf = '';
      srv.child.stdout.on('data', (c) => {
        buf += c.toString('utf8');
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const lineText = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!lineText) continue;
          let msg;
          try {
            msg = JSON.parse(lineText);
          } catch {
            reject(new Error(`stdout line is not JSON: ${lineText.slice(0, 300)}`));
            return;
          }
          if (msg.id === 1) resolve(msg);
        }
      });
      srv.exited.then(({ code }) => reject(new Error(`the server exited (code ${code}) before answering initialize`)));
    });
    srv.child.stdin.write(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw-e2e', version: '0' } },
      }) + '\n',
    );
    const msg = await withStderr(srv.stderr, () => within(response, 15_000, `initialize ${protocolVersion}`));
    return { msg, stderr: srv.stderr };
  } finally {
    await srv.kill();
  }
}

describe('MCP protocol versions (raw JSON-RPC over stdio)', () => {
  let w;
  before(() => {
    w = makeWorkspace('http://127.0.0.1:9');
  });
  after(() => w?.cleanup());

  for (const version of ['2025-06-18', '2025-11-25']) {
    test(`initialize with protocolVersion ${version}`, { timeout: TEST_TIMEOUT }, async () => {
      const { msg, stderr } = await rawInitialize(w, version);
      await withStderr(stderr, async () => {
        assert.equal(msg.error, undefined, `initialize ${version} got an error: ${JSON.stringify(msg.error)}`);
        assert.equal(typeof msg.result?.protocolVersion, 'string', `no protocolVersion: ${JSON.stringify(msg)}`);
        assert.ok(
          SUPPORTED_PROTOCOL_VERSIONS.includes(msg.result.protocolVersion),
          `answered ${msg.result.protocolVersion}, which the official client does not speak`,
        );
        if (version === '2025-06-18') {
          assert.equal(msg.result.protocolVersion, version, 'a supported requested version must be echoed');
        }
        assert.ok(msg.result.capabilities?.tools, `no tools capability: ${JSON.stringify(msg.result)}`);
      });
    });
  }
});
