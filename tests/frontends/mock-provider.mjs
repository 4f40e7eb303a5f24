// A mock model provider for the front-end tests: a loopback HTTP server speaking Ollama's chat
// wire format (POST /api/chat, NDJSON lines ending with `"done": true`), plus GET /api/tags and
// GET /api/version for health probes.
//
// What it answers depends on the concatenated message contents:
//  - "SLOWREPLY": 40 chunks "tick ", 250 ms apart (so a test can cancel mid-stream);
//  - one of the built-in edit agents' templates ("Fix the problems", "Refactor this",
//    "Add documentation"): one fenced code block holding `mock.editReply`;
//  - anything else: "The answer is forty-two. " in a few chunks.
//
// Every request is recorded (`requests`: {method, url, body, text, closedEarly, finished}),
// so tests can check what the prompt contained. Listens on 127.0.0.1 only; `close()` ends it
// and every open connection.
import http from 'node:http';

export const ANSWER = 'The answer is forty-two. ';
export const ANSWER_CHUNKS = ['The answer ', 'is ', 'forty-two. '];
export const DEFAULT_EDIT_REPLY = 'def welcome(name):\n    user = User(name)\n    return user.greeting()  # fixed\n';
const EDIT_MARKERS = ['Fix the problems', 'Refactor this', 'Add documentation'];
const SLOW_CHUNKS = 40;
const SLOW_DELAY_MS = 250;

/** The text of an Ollama chat request: every message's content, joined. */
export function requestText(body) {
  const msgs = Array.isArray(body?.messages) ? body.messages : [];
  return msgs.map((m) => (typeof m?.content === 'string' ? m.content : JSON.stringify(m?.content ?? ''))).join('\n');
}

function line(model, content, done, extra = {}) {
  return JSON.stringify({ model, created_at: new Date().toISOString(), message: { role: 'assistant', content }, done, ...extra }) + '\n';
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts the mock. Returns {url, requests, close(), editReply (settable), waitFor(pred, ms)}.
 */
export async function start() {
  const sockets = new Set();
  const mock = {
    url: '',
    requests: [],
    editReply: DEFAULT_EDIT_REPLY,
    close: async () => {},
    /** Resolves with the first recorded request matching `pred` (polling), or rejects after `ms`. */
    async waitFor(pred, ms = 10000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const hit = mock.requests.find(pred);
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`mock provider: no matching request within ${ms} ms (${mock.requests.length} recorded)`);
        await sleep(50);
      }
    },
  };

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks).toString('utf8')).catch((err) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: String(err?.message ?? err) }));
      });
    });
  });

  async function handle(req, res, raw) {
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === '/api/tags') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ models: [{ name: 'm', model: 'm' }] }));
      return;
    }
    if (req.method === 'GET' && path === '/api/version') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ version: '0.9.0' }));
      return;
    }
    if (req.method !== 'POST' || path !== '/api/chat') {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `mock provider: no route ${req.method} ${path}` }));
      return;
    }
    let body = null;
    try {
      body = JSON.parse(raw);
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'mock provider: body is not JSON' }));
      return;
    }
    const text = requestText(body);
    const record = { method: req.method, url: req.url, body, text, closedEarly: false, finished: false, at: Date.now() };
    mock.requests.push(record);
    const model = typeof body.model === 'string' ? body.model : 'm';

    let pieces;
    let delay = 10;
    if (text.includes('SLOWREPLY')) {
      pieces = Array.from({ length: SLOW_CHUNKS }, () => 'tick ');
      delay = SLOW_DELAY_MS;
    } else if (EDIT_MARKERS.some((m) => text.includes(m))) {
      const code = mock.editReply.endsWith('\n') ? mock.editReply : mock.editReply + '\n';
      pieces = ['```python\n', code, '```\n'];
    } else {
      pieces = ANSWER_CHUNKS;
    }

    let closed = false;
    res.on('close', () => {
      closed = true;
      if (!record.finished) record.closedEarly = true;
    });
    const final = { done_reason: 'stop', prompt_eval_count: 5, eval_count: 5 };
    if (body.stream === false) {
      res.writeHead(200, { 'content-type': 'application/json' });
      record.finished = true;
      res.end(JSON.stringify({ model, message: { role: 'assistant', content: pieces.join('') }, done: true, ...final }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    for (const p of pieces) {
      if (closed) return;
      res.write(line(model, p, false));
      await sleep(delay);
    }
    if (closed) return;
    record.finished = true;
    res.end(line(model, '', true, final));
  }

  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  mock.url = `http://127.0.0.1:${port}`;
  mock.close = () =>
    new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return mock;
}
