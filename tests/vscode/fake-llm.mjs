#!/usr/bin/env node
// A small fake OpenAI-compatible server for end-to-end tests (VS Code and the other editors).
//
//   node fake-llm.mjs [--port N] [--delay-ms 250] [--log requests.jsonl]
//
// Listens on 127.0.0.1 (port 0 = any free port) and prints one line `{"port": N}` on stdout
// when ready. POST /v1/chat/completions streams (SSE, ending in `data: [DONE]`) or answers in
// one JSON body, depending on `stream`. What it answers depends on the prompt:
//
//  - an edit request (the prompt asks for "exactly one fenced code block"): one fenced block
//    holding the code the prompt showed, with every FIXME turned into FIXED (or, when there is
//    none, the code with a first line "<comment> edited by fake-llm");
//  - a review request (asks for "one JSON object per line"): one finding on line 1;
//  - anything else: an answer in several chunks, `delay-ms` apart:
//    "FAKE-ANSWER-BEGIN … FAKE-ANSWER-END".
//
// Every request is appended to the --log file as one JSON line. GET /v1/models, GET /health.
// Stops on SIGTERM / SIGINT, or when its parent's stdin closes (--exit-with-stdin).
import fs from 'node:fs';
import http from 'node:http';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const port = Number(opt('port', process.env.FAKE_LLM_PORT ?? '0'));
const delayMs = Number(opt('delay-ms', process.env.FAKE_LLM_DELAY_MS ?? '250'));
const logFile = opt('log', process.env.FAKE_LLM_LOG ?? '');

export const ANSWER_CHUNKS = [
  'FAKE-ANSWER-BEGIN ',
  'This code ',
  'adds two numbers ',
  'and returns ',
  'their sum. For example:\n\n',
  '```python\nprint(add(1, 2))  # 3\n```\n\n',
  'FAKE-ANSWER-END',
];

function promptText(body) {
  const msgs = Array.isArray(body?.messages) ? body.messages : [];
  return msgs
    .map((m) => (typeof m.content === 'string' ? m.content : Array.isArray(m.content) ? m.content.map((c) => c.text ?? '').join('') : ''))
    .join('\n');
}

/** The first fenced block of the prompt: the code the agent works on. */
function firstFence(text) {
  const m = /```([\w+#.-]*)\n([\s\S]*?)\n?```/.exec(text);
  return m ? { lang: m[1] || '', code: m[2] } : { lang: '', code: '' };
}

function commentFor(lang) {
  if (['python', 'py', 'sh', 'bash', 'ruby', 'toml', 'yaml'].includes(lang)) return '#';
  if (['lua', 'sql', 'haskell'].includes(lang)) return '--';
  return '//';
}

export function reply(prompt) {
  if (/exactly one fenced code block/i.test(prompt)) {
    const { lang, code } = firstFence(prompt);
    const body = code.replace(/\n+$/, '');
    const edited = body.includes('FIXME') ? body.replaceAll('FIXME', 'FIXED') : `${commentFor(lang)} edited by fake-llm\n${body}`;
    return { kind: 'edit', chunks: ['Here is the fix:\n', '```' + lang + '\n', edited + '\n', '```\n'] };
  }
  if (/one JSON object per line/i.test(prompt)) {
    return { kind: 'review', chunks: ['{"line": 1, "severity": "warning", "message": "fake-llm review finding"}\n'] };
  }
  return { kind: 'answer', chunks: ANSWER_CHUNKS };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const server = http.createServer(async (req, res) => {
  if (req.method === 'GET' && (req.url === '/health' || req.url === '/v1/models')) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(req.url === '/health' ? { status: 'ok' } : { object: 'list', data: [{ id: 'm', object: 'model' }] }));
    return;
  }
  if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}` } }));
    return;
  }
  let raw = '';
  for await (const chunk of req) raw += chunk;
  let body;
  try {
    body = JSON.parse(raw);
  } catch {
    res.writeHead(400, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: 'bad json' } }));
    return;
  }
  const prompt = promptText(body);
  const r = reply(prompt);
  if (logFile) {
    fs.appendFileSync(logFile, JSON.stringify({ at: Date.now(), kind: r.kind, model: body.model, stream: !!body.stream, prompt }) + '\n');
  }
  const id = `chatcmpl-fake-${Date.now()}`;
  const created = Math.floor(Date.now() / 1000);
  if (!body.stream) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        id,
        object: 'chat.completion',
        created,
        model: body.model ?? 'm',
        choices: [{ index: 0, message: { role: 'assistant', content: r.chunks.join('') }, finish_reason: 'stop' }],
        usage: { prompt_tokens: Math.ceil(prompt.length / 4), completion_tokens: 20, total_tokens: Math.ceil(prompt.length / 4) + 20 },
      }),
    );
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  let closed = false;
  res.on('close', () => (closed = true));
  const send = (obj) => res.write(`data: ${JSON.stringify(obj)}\n\n`);
  send({ id, object: 'chat.completion.chunk', created, model: body.model ?? 'm', choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
  for (const text of r.chunks) {
    await sleep(delayMs);
    if (closed) return;
    send({ id, object: 'chat.completion.chunk', created, model: body.model ?? 'm', choices: [{ index: 0, delta: { content: text }, finish_reason: null }] });
  }
  send({ id, object: 'chat.completion.chunk', created, model: body.model ?? 'm', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
  send({
    id,
    object: 'chat.completion.chunk',
    created,
    model: body.model ?? 'm',
    choices: [],
    usage: { prompt_tokens: Math.ceil(prompt.length / 4), completion_tokens: 20, total_tokens: Math.ceil(prompt.length / 4) + 20 },
  });
  res.write('data: [DONE]\n\n');
  res.end();
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (args.includes('--exit-with-stdin')) {
  process.stdin.on('end', stop);
  process.stdin.resume();
}
