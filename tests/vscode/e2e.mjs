// e2e.mjs — the Infinity Matrix Agent extension in a real VS Code (code-server), driven by
// playwright-core in Debian's headless Chromium. Run by scripts/vscode-e2e.sh, which installs
// everything and passes these variables:
//   E2E_CODE_SERVER  code-server's out/node/entry.js
//   E2E_PLAYWRIGHT   the playwright-core package directory
//   E2E_VSIX         the .vsix under test
//   E2E_ARTIFACTS    where screenshots go
//   E2E_LOGDIR       where logs go
//   CHROMIUM         the browser (default /usr/bin/chromium)
//   INFINITY_MATRIX_E2E_LLM_URL  optional real OpenAI-compatible base URL instead of the fake
// Prints "N passed, N failed" and exits non-zero on failure. KEEP_TMP=1 keeps the temp dir.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const need = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is not set: run scripts/vscode-e2e.sh`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
  return v;
};
const CS_ENTRY = need('E2E_CODE_SERVER');
const VSIX = need('E2E_VSIX');
const ARTIFACTS = need('E2E_ARTIFACTS');
const LOGDIR = process.env.E2E_LOGDIR ?? ARTIFACTS;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const REAL_LLM = process.env.INFINITY_MATRIX_E2E_LLM_URL || '';
// With a real model the checks look for behaviour (text streamed, the document changed), not
// for the fake server's marker text.
const REAL_MODEL = process.env.INFINITY_MATRIX_E2E_LLM_MODEL || 'smollm2';
const { chromium } = createRequire(import.meta.url)(need('E2E_PLAYWRIGHT'));
fs.mkdirSync(ARTIFACTS, { recursive: true });
fs.mkdirSync(LOGDIR, { recursive: true });

const t0 = performance.now();
const secs = (a, b = performance.now()) => ((b - a) / 1000).toFixed(1);
const log = (...a) => console.log(`[e2e +${secs(t0)}s]`, ...a);
const results = [];
let shot = 0;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'im-vscode-e2e-'));
const userDataDir = path.join(tmp, 'user-data');
const extensionsDir = path.join(tmp, 'extensions');
const chromeProfile = path.join(tmp, 'chrome-profile');
const workspace = path.join(tmp, 'workspace');
const csConfig = path.join(tmp, 'config.yaml');
fs.writeFileSync(csConfig, 'auth: none\ncert: false\n');
fs.cpSync(path.join(HERE, 'fixture'), workspace, { recursive: true });
const csCommon = ['--config', csConfig, '--user-data-dir', userDataDir, '--extensions-dir', extensionsDir];
// code-server, VS Code, Chromium and the Infinity Matrix server (config, audit log) write under
// the XDG dirs: keep all of it in the throwaway dir.
const isolatedEnv = { ...process.env, PASSWORD: '', HASHED_PASSWORD: '', INFINITY_MATRIX_LOG: 'info' };
for (const v of ['XDG_CONFIG_HOME', 'XDG_DATA_HOME', 'XDG_CACHE_HOME', 'XDG_STATE_HOME'])
  fs.mkdirSync((isolatedEnv[v] = path.join(tmp, 'xdg', v)), { recursive: true });

let server; // code-server (own process group)
let fake; // the fake LLM server
let context; // browser context
let page;

async function check(name, fn) {
  const s = performance.now();
  try {
    await fn();
    results.push({ name, ok: true });
    log(`PASS ${name} (${secs(s)}s)`);
  } catch (e) {
    results.push({ name, ok: false, err: e });
    log(`FAIL ${name}: ${String(e?.message ?? e).split('\n').slice(0, 3).join(' | ')}`);
    await screenshot(`FAIL-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 50)}`);
  }
}

async function screenshot(name) {
  if (!page) return;
  const file = path.join(ARTIFACTS, `${String(++shot).padStart(2, '0')}-${name}.png`);
  try {
    await page.screenshot({ path: file });
  } catch (e) {
    log(`screenshot ${name} failed: ${e.message}`);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor(what, fn, timeoutMs = 30_000, everyMs = 200) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${last ? ` (${last.message})` : ''}`);
}

async function waitHttp(url, timeoutMs) {
  await waitFor(url, async () => {
    if (server.exitCode !== null) throw new Error(`code-server exited with ${server.exitCode}`);
    const r = await fetch(url);
    return r.ok;
  }, timeoutMs, 100);
}

async function stopServer() {
  if (!server || server.exitCode !== null || server.signalCode) return;
  const exited = new Promise((r) => server.once('exit', r));
  try {
    process.kill(-server.pid, 'SIGTERM'); // our own process group only
  } catch {}
  const t = setTimeout(() => {
    try {
      process.kill(-server.pid, 'SIGKILL');
    } catch {}
  }, 5000);
  await exited;
  clearTimeout(t);
}

// ---- page helpers ----------------------------------------------------------------------------

const norm = (s) => s.replace(/\u00a0/g, ' ');

/** The monitor when nothing runs: the product's name alone. */
const isIdle = (t) => /^\W*Infinity Matrix$/.test(t);

/** The status bar item of the extension (the agent monitor). */
async function monitorText() {
  const items = await page.locator('#workbench\\.parts\\.statusbar .statusbar-item').allInnerTexts();
  const re = /Infinity Matrix|running|queued|to approve|circuit|server down/;
  return norm(items.find((t) => re.test(t)) ?? '').trim();
}

/**
 * Opens the quick input with `key`, types `value` and waits until `ready()` holds (at most
 * three tries). A key pressed while the previous quick input is still closing, or while
 * focus is moving (a diff editor closing), can be lost, and an input opened then can be
 * closed again by the late hide: the focus goes back to the active editor (clicking its tab
 * keeps the selection) before the next try. Enter is the caller's.
 */
async function openQuickInput(key, value, ready) {
  const widget = page.locator('.quick-input-widget').first();
  const input = widget.locator('input').first();
  for (let attempt = 1; ; attempt++) {
    if (attempt > 1) {
      const tab = page.locator('.editor-group-container.active .tab.active').first();
      if (await tab.count()) await tab.click();
      else await page.locator('.monaco-workbench').first().click({ position: { x: 5, y: 5 } });
    }
    await page.keyboard.press(key);
    try {
      await input.waitFor({ state: 'visible', timeout: 5_000 });
      await input.fill(value, { timeout: 5_000 });
      await waitFor(`the quick input for ${JSON.stringify(value)}`, async () => (await input.isVisible()) && (await input.inputValue()) === value && (await ready()), 10_000);
      return input;
    } catch (e) {
      const where = await page.evaluate(() => {
        const a = document.activeElement;
        const w = [...document.querySelectorAll('.quick-input-widget')].map((q) => `${q.className} display=${getComputedStyle(q).display}`);
        return `active=${a?.tagName}.${a?.className} widgets=${JSON.stringify(w)}`;
      });
      log(`${key} (attempt ${attempt}) for ${JSON.stringify(value)} failed: ${String(e?.message ?? e).split('\n')[0]}; ${where}`);
      if (attempt === 3) throw e;
    }
  }
}

async function runCommand(title) {
  // no Escape first: it would clear the editor's selection
  const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: title }).first();
  const input = await openQuickInput('F1', `>${title}`, () => row.isVisible());
  await page.keyboard.press('Enter');
  // the palette has taken the Enter once it closed or shows something else (a command's own
  // picker): a key pressed before that could be lost to its closing
  await waitFor(`the command palette to run "${title}"`, async () => !(await input.isVisible()) || (await input.inputValue()) !== `>${title}`, 15_000);
}

async function openFile(name) {
  await page.keyboard.press('Escape');
  const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: name }).first();
  await openQuickInput('Control+P', name, () => row.isVisible());
  await page.keyboard.press('Enter');
  await page.locator('.tab.active', { hasText: name }).first().waitFor({ timeout: 15_000 });
}

/** Focus the editor of a tab (by title) and select lines [from, to] (1-based, inclusive). */
async function selectLines(tabTitle, from, to) {
  await gotoLine(tabTitle, from);
  await page.keyboard.press('Home');
  await page.keyboard.press('Home'); // first column, not the first non-blank
  for (let i = from; i <= to; i++) await page.keyboard.press('Shift+ArrowDown');
}

async function codeActionMenuText() {
  const menu = page.locator('.action-widget').first();
  await menu.waitFor({ state: 'visible', timeout: 20_000 });
  return norm(await menu.innerText());
}

/** Picks an entry of the light bulb menu with the keyboard (the first entry is focused). */
async function pickCodeAction(title) {
  const lines = (await codeActionMenuText()).split('\n').map((l) => l.trim()).filter((l) => l && !/^More Actions/.test(l));
  const index = lines.findIndex((l) => l === title);
  if (index < 0) throw new Error(`no code action "${title}" in ${JSON.stringify(lines)}`);
  for (let i = 0; i < index; i++) await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
}

async function gotoLine(tabTitle, line) {
  await page.locator('.tab', { hasText: tabTitle }).first().click();
  await page.locator('.editor-group-container .monaco-editor.focused').first().waitFor({ timeout: 15_000 });
  // By keyboard, not through "Go to Line": a quick input opened right after another one
  // closed can be closed again by that one's late hide (and keys typed before it opens land
  // in the document). The fixture's lines are short and unwrapped.
  await page.keyboard.press('Control+Home');
  for (let i = 1; i < line; i++) await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Home');
  await waitFor(`the cursor on line ${line}`, async () => new RegExp(`Ln ${line},`).test(await page.locator('#workbench\\.parts\\.statusbar').first().innerText()), 10_000);
}

/** The text shown by the editors of the group whose active tab title contains `title`. */
async function editorText(title) {
  const groups = page.locator('.editor-group-container');
  const n = await groups.count();
  for (let i = 0; i < n; i++) {
    const g = groups.nth(i);
    const active = g.locator('.tab.active', { hasText: title });
    if ((await active.count()) > 0) {
      const texts = await g.locator('.monaco-editor .view-lines').allInnerTexts();
      return norm(texts.join('\n'));
    }
  }
  return '';
}

/** Text of a file on disk or in its editor (saved or not). */
async function fileEditorText(name) {
  return editorText(name);
}

const sidebar = () => page.locator('#workbench\\.parts\\.sidebar');

async function openAgentsView() {
  const title = async () => norm(await sidebar().locator('.composite.title').first().innerText().catch(() => '')).toLowerCase();
  if (!(await title()).includes('infinity matrix')) {
    await page.locator('.activitybar .action-item .action-label[aria-label^="Infinity Matrix"]').first().click();
  }
  // With the Answers view beside it, the container's title is the product's; the Agents view
  // is a pane of it.
  await waitFor(
    'the Infinity Matrix view',
    async () => (await title()).includes('infinity matrix') && (await sidebar().locator('.pane-header', { hasText: /^\s*agents/i }).count()) > 0,
    15_000,
  );
  const agents = sidebar().locator('.pane-header', { hasText: /^\s*agents/i }).first();
  if ((await agents.getAttribute('aria-expanded')) === 'false') await agents.click();
}

async function treeRows() {
  const rows = await sidebar().getByRole('treeitem').allInnerTexts();
  return rows.map((r) => norm(r).replace(/\s+/g, ' ').trim());
}

/** The pid of the Infinity Matrix server started by the extension installed here. */
function serverPid() {
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.startsWith(extensionsDir) && argv[0].endsWith('/server/infinity-matrix') && argv[1] === 'lsp') return Number(pid);
    } catch {}
  }
  return undefined;
}

/** The Answers panel's document (a webview: two nested iframes in VS Code's web build). */
function answerFrame() {
  return page.frameLocator('iframe.webview.ready').last().frameLocator('#active-frame');
}

/** The prompts the fake LLM received, oldest first. */
function fakeRequests() {
  try {
    return fs
      .readFileSync(path.join(LOGDIR, 'fake-llm-requests.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l).prompt ?? '');
  } catch {
    return [];
  }
}

// ---- the run ---------------------------------------------------------------------------------

async function startFakeLlm() {
  if (REAL_LLM) return REAL_LLM;
  const reqLog = path.join(LOGDIR, 'fake-llm-requests.jsonl');
  fs.rmSync(reqLog, { force: true });
  fake = spawn(process.execPath, [path.join(HERE, 'fake-llm.mjs'), '--delay-ms', '700', '--log', reqLog], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    fake.once('exit', (c) => reject(new Error(`fake LLM exited with ${c}`)));
    fake.stdout.once('data', (d) => resolve(JSON.parse(String(d)).port));
  });
  log(`fake OpenAI-compatible server on 127.0.0.1:${port} (requests logged to ${reqLog})`);
  return `http://127.0.0.1:${port}/v1`;
}

function writeUserSettings(baseUrl) {
  const settings = {
    // the provider under test (user settings: provider settings are application-scoped)
    'infinityMatrix.providers': { fake: { kind: 'openai', base_url: baseUrl, model: REAL_LLM ? REAL_MODEL : 'm', timeout_ms: 120000 } },
    'infinityMatrix.defaults.providers': ['fake'],
    'infinityMatrix.agents': {
      autoedit: {
        description: 'Small edits applied without asking',
        output: 'edit',
        approval: 'auto',
        triggers: ['command'],
        prompt:
          'Fix the problems in this {{language}} code from {{file}}.\n\n```{{language}}\n{{selection}}\n```\n\nReply with exactly one fenced code block containing the complete replacement for the code shown.',
      },
    },
    'infinityMatrix.log.level': 'debug',
    // every LSP message in the 'Infinity Matrix Trace' channel, copied to the logs: a failure can be read afterwards
    'infinityMatrix.trace.server': 'verbose',
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.welcomePage.walkthroughs.openOnInstall': false,
    'security.workspace.trust.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.autoUpdate': false,
    'extensions.autoCheckUpdates': false,
    'files.autoSave': 'off',
    'editor.minimap.enabled': false,
    'chat.commandCenter.enabled': false,
    'workbench.editor.enablePreview': false,
    'git.enabled': false,
  };
  const dir = path.join(userDataDir, 'User');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'settings.json'), JSON.stringify(settings, null, 2));
  return settings;
}

/**
 * Edits the user settings the way a user does: "Preferences: Open User Settings (JSON)", replace
 * the text (pasted, so the editor's auto-closing brackets stay out of the way), save.
 */
async function rewriteUserSettings(change) {
  const file = path.join(userDataDir, 'User', 'settings.json');
  const settings = JSON.parse(fs.readFileSync(file, 'utf8'));
  change(settings);
  const text = JSON.stringify(settings, null, 2);
  await page.evaluate((t) => navigator.clipboard.writeText(t), text);
  await runCommand('Preferences: Open User Settings (JSON)');
  await page.locator('.tab.active', { hasText: 'settings.json' }).first().waitFor({ timeout: 15_000 });
  await page.locator('.editor-group-container.active .monaco-editor .view-lines').first().click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Control+V');
  await page.keyboard.press('Control+S');
  await waitFor('settings.json saved', async () => {
    try {
      return JSON.stringify(JSON.parse(fs.readFileSync(file, 'utf8'))) === JSON.stringify(settings);
    } catch {
      return false;
    }
  }, 15_000);
  // back to the source file (the settings editor stays open)
  await page.locator('.tab', { hasText: 'calc.py' }).first().click();
}

/** The extension's output channel as VS Code logs it. */
function extensionLog() {
  const logs = path.join(userDataDir, 'logs');
  let text = '';
  for (const f of fs.readdirSync(logs, { recursive: true }).map(String)) {
    if (/1-Infinity Matrix\.log$/.test(f)) text += fs.readFileSync(path.join(logs, f), 'utf8');
  }
  return text;
}

async function main() {
  for (const [p, what] of [[CS_ENTRY, 'code-server'], [VSIX, 'the .vsix'], [CHROMIUM, 'chromium']])
    if (!fs.existsSync(p)) throw new Error(`${what} not found at ${p}`);

  const baseUrl = await startFakeLlm();
  writeUserSettings(baseUrl);

  // 1. install the .vsix the way a user would
  let s = performance.now();
  const inst = spawnSync(process.execPath, [CS_ENTRY, ...csCommon, '--install-extension', VSIX], { encoding: 'utf8', timeout: 180_000, env: isolatedEnv });
  fs.writeFileSync(path.join(LOGDIR, 'install-extension.log'), `${inst.stdout}\n${inst.stderr}`);
  if (inst.status !== 0 || !/successfully installed/i.test(inst.stdout + inst.stderr))
    throw new Error(`--install-extension failed (status ${inst.status}): ${inst.stdout}${inst.stderr}`);
  log(`extension installed in ${secs(s)}s`);

  // 2. code-server on loopback
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const csLog = fs.openSync(path.join(LOGDIR, 'code-server.log'), 'w');
  server = spawn(
    process.execPath,
    [CS_ENTRY, ...csCommon, '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--disable-telemetry', '--disable-update-check',
      '--disable-workspace-trust', '--disable-getting-started-override', '--ignore-last-opened', workspace],
    { detached: true, stdio: ['ignore', csLog, csLog], env: isolatedEnv },
  );
  await waitHttp(`${base}/healthz`, 60_000);
  log(`code-server pid ${server.pid} on ${base}`);

  // 3. headless Chromium, fresh profile; the page may reach 127.0.0.1 only
  context = await chromium.launchPersistentContext(chromeProfile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1500, height: 950 },
    env: isolatedEnv,
  });
  await context.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.hostname === '127.0.0.1' || u.protocol === 'data:' || u.protocol === 'blob:') return route.continue();
    return route.abort();
  });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  page = context.pages()[0] ?? (await context.newPage());
  s = performance.now();
  await page.goto(`${base}/?folder=${encodeURIComponent(workspace)}`);
  await page.locator('.monaco-workbench').waitFor({ timeout: 90_000 });
  await page.locator('#workbench\\.parts\\.statusbar').waitFor({ timeout: 60_000 });
  log(`workbench visible after ${secs(s)}s`);

  await check('the extension starts the packaged server; the status bar says "Infinity Matrix"', async () => {
    const text = await waitFor('the agent monitor in the status bar', async () => {
      const t = await monitorText();
      return isIdle(t) ? t : undefined;
    }, 90_000);
    if (!serverPid()) throw new Error('no infinity-matrix server process from the installed extension');
    log(`status bar: ${JSON.stringify(text)}`);
  });
  await screenshot('workbench');

  await check('the Agents view (activity bar "Infinity Matrix") lists the server\'s agents and the provider', async () => {
    await openAgentsView();
    const rows = await waitFor('agents in the tree', async () => {
      const r = await treeRows();
      return r.some((x) => x.startsWith('explain')) && r.some((x) => x.startsWith('autoedit')) ? r : undefined;
    });
    for (const a of ['document', 'explain', 'fix', 'refactor', 'review', 'tests'])
      if (!rows.some((r) => r.startsWith(a))) throw new Error(`agent ${a} missing from ${JSON.stringify(rows)}`);
    if (!rows.some((r) => r.includes('Explain the selected code'))) throw new Error(`no agent description in ${JSON.stringify(rows)}`);
  });
  await screenshot('agents-view');

  await openFile('calc.py');
  let firstTask;
  await check('Execute Prompt from the command palette streams the answer into the Answers panel as rendered Markdown', async () => {
    await gotoLine('calc.py', 6);
    await runCommand('Infinity Matrix: Execute Prompt');
    const input = page.locator('.quick-input-widget input').first();
    await page.locator('.quick-input-widget', { hasText: 'Ask about the code at the cursor' }).waitFor({ state: 'visible', timeout: 15_000 });
    await input.fill('What does this function do?');
    await page.keyboard.press('Enter');
    const turn = () => answerFrame().locator('article.turn').last();
    const partial = await waitFor('the first streamed chunk in the panel', async () => {
      const t = await turn().innerText({ timeout: 500 }).catch(() => '');
      return (REAL_LLM ? /running|succeeded/.test(t) && !/Waiting for the model/.test(t) : t.includes('FAKE-ANSWER-BEGIN')) ? t : undefined;
    }, REAL_LLM ? 120_000 : 30_000, 100);
    const streamedInParts = REAL_LLM ? !/succeeded/.test(partial) : !partial.includes('FAKE-ANSWER-END');
    await screenshot('answer-streaming');
    if (!REAL_LLM && !streamedInParts) throw new Error('the whole answer arrived at once: no streaming seen');
    const full = await waitFor('the whole answer', async () => {
      const t = await turn().innerText({ timeout: 500 }).catch(() => '');
      return (REAL_LLM || t.includes('FAKE-ANSWER-END')) && /succeeded|failed/.test(t) ? t : undefined;
    }, REAL_LLM ? 180_000 : 60_000, 200);
    if (!/succeeded/.test(full)) throw new Error(`the task did not succeed: ${full.slice(0, 300)}`);
    if (!full.includes('What does this function do?')) throw new Error(`the question is not echoed: ${full.slice(0, 300)}`);
    const label = /explain #(\d+)/.exec(full);
    if (!label) throw new Error(`no task label "explain #N" in the turn header: ${full.slice(0, 300)}`);
    if (!/calc\.py:6/.test(full)) throw new Error(`no target chip calc.py:6: ${full.slice(0, 300)}`);
    // The context items sent, each a chip with its tokens (from the server's record of the task).
    await waitFor('context chips', async () => ((await turn().locator('.chip', { hasText: /tok$/ }).count()) > 0 ? true : undefined), 10_000);
    if (!REAL_LLM) {
      if (!/adds two numbers/.test(full)) throw new Error(`unexpected answer text: ${full.slice(0, 300)}`);
      // Markdown rendered: the fenced block is a highlighted code block with its actions.
      const code = turn().locator('.code');
      if ((await code.count()) !== 1) throw new Error('the fenced block is not rendered as one code block');
      if (!(await code.locator('.hljs-built_in, .hljs-title, .hljs-comment, .hljs-number').count())) throw new Error('the code block is not highlighted');
      for (const b of ['Copy', 'Insert at cursor', 'Apply as edit'])
        if (!(await code.locator('button', { hasText: b }).count())) throw new Error(`no "${b}" button on the code block`);
      if (full.includes('```')) throw new Error('raw Markdown fences shown');
    }
    firstTask = label[0];
    log(`streamed in parts: ${streamedInParts}`);
    await screenshot('answer-done');
  });

  await check('a follow-up in the panel continues the conversation (the earlier turn goes into the prompt)', async () => {
    const box = answerFrame().locator('#question');
    await box.fill('And what does it return for negative numbers?');
    await box.press('Control+Enter');
    const turns = answerFrame().locator('article.turn');
    await waitFor('two turns, the second finished', async () => {
      if ((await turns.count()) < 2) return undefined;
      const t = await turns.nth(1).innerText({ timeout: 500 }).catch(() => '');
      return /succeeded|failed/.test(t) && t.includes('negative numbers') ? t : undefined;
    }, REAL_LLM ? 180_000 : 60_000, 200);
    if (!REAL_LLM) {
      const sent = fakeRequests().at(-1) ?? '';
      if (!sent.includes('What does this function do?') || !sent.includes('FAKE-ANSWER-END')) {
        throw new Error(`the follow-up's prompt lacks the earlier turn: ${sent.slice(0, 400)}`);
      }
    }
    await screenshot('answer-follow-up');
  });

  await check('Insert at cursor puts a code block at the editor\'s cursor', async () => {
    await gotoLine('calc.py', 16);
    const block = answerFrame().locator('article.turn').first().locator('.code').first();
    const code = norm(await block.locator('pre').first().innerText({ timeout: 10_000 })).trim();
    const last = code.split('\n').at(-1)?.trim() ?? '';
    if (!last) throw new Error('the code block is empty');
    await block.locator('button', { hasText: 'Insert at cursor' }).click();
    await waitFor('the code block at the end of calc.py', async () => {
      const lines = (await fileEditorText('calc.py')).trimEnd().split('\n');
      return lines.at(-1)?.trim() === last ? true : undefined;
    }, 15_000);
    await screenshot('insert-code-block');
  });

  await check('Apply as edit on a code block goes through the server\'s approval: the diff asks, Reject leaves the file alone', async () => {
    const before = await fileEditorText('calc.py');
    const block = answerFrame().locator('article.turn').first().locator('.code').first();
    await block.locator('button', { hasText: 'Apply as edit' }).click();
    // An answer agent's approval never covered edits: the diff is the prompt.
    await page.locator('.monaco-diff-editor').first().waitFor({ timeout: 30_000 });
    if (!REAL_LLM) await waitFor('the code block in the diff', async () => (await editorText('proposal')).includes('print(add(1, 2))'), 20_000);
    await screenshot('apply-code-block-diff');
    const reject = page.locator('.editor-actions .action-label', { hasText: /^Reject$/ }).first();
    await reject.waitFor({ timeout: 20_000 });
    await reject.click();
    await waitFor('the diff preview to close', async () => (await page.locator('.monaco-diff-editor').count()) === 0, 10_000);
    await openAgentsView();
    await waitFor('a rejected explain task in the tree', async () => (await treeRows()).some((r) => /^explain #\d+.*rejected/.test(r)), 15_000);
    if ((await fileEditorText('calc.py')) !== before) throw new Error('a rejected code block changed the file');
  });

  await check('while a task runs the status bar spins with the counts, then goes back to idle', async () => {
    // run another prompt and watch the monitor
    await gotoLine('calc.py', 10);
    await runCommand('Infinity Matrix: Execute Prompt');
    const input = page.locator('.quick-input-widget input').first();
    await input.waitFor({ state: 'visible', timeout: 15_000 });
    await input.fill('@explain and this one?');
    await page.keyboard.press('Enter');
    const busy = await waitFor('"1 running" in the status bar', async () => {
      const t = await monitorText();
      return /1 running/.test(t) ? t : undefined;
    }, 20_000, 50);
    const spin = await page.locator('#workbench\\.parts\\.statusbar .statusbar-item', { hasText: 'running' }).locator('.codicon-sync, .codicon-modifier-spin').count();
    await screenshot('status-bar-running');
    if (!spin) throw new Error(`no spinner next to ${JSON.stringify(busy)}`);
    await waitFor('idle again', async () => isIdle(await monitorText()), REAL_LLM ? 180_000 : 60_000);
  });

  await check('the task appears in the Agents tree under its agent with state, time and provider', async () => {
    await openAgentsView();
    const rows = await waitFor('a finished explain task in the tree', async () => {
      const r = await treeRows();
      return r.some((x) => /^explain #\d+ · calc\.py/.test(x) && /succeeded/.test(x) && /fake\/m|fake/.test(x)) ? r : undefined;
    }, 20_000);
    log(`tree rows: ${JSON.stringify(rows.slice(0, 12))}`);
    await screenshot('tree-with-tasks');
  });

  await check('the server\'s code actions show in the light bulb menu for a selection', async () => {
    await selectLines('calc.py', 4, 6);
    await page.keyboard.press('Control+.');
    const text = await codeActionMenuText();
    await screenshot('code-actions');
    await page.keyboard.press('Escape');
    for (const t of ['Explain', 'Add docs', 'Refactor', 'Write tests'])
      if (!text.includes(t)) throw new Error(`code action "${t}" missing: ${JSON.stringify(text)}`);
  });

  await check('an edit awaiting approval opens a diff preview; Apply in its title bar changes the document', async () => {
    await selectLines('calc.py', 4, 6);
    await runCommand('Infinity Matrix: Start Agent');
    const input = page.locator('.quick-input-widget input').first();
    await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Fix this diagnostic' }).first().waitFor({ timeout: 15_000 });
    await input.fill('fix');
    await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Fix this diagnostic' }).first().click();
    const before = await fileEditorText('calc.py');
    await page.locator('.monaco-diff-editor').first().waitFor({ timeout: REAL_LLM ? 180_000 : 60_000 });
    // Labelled buttons, not icons.
    const apply = page.locator('.editor-actions .action-label', { hasText: /^Apply$/ }).first();
    await apply.waitFor({ timeout: 20_000 });
    if (!(await page.locator('.editor-actions .action-label', { hasText: /^Reject$/ }).count())) throw new Error('no Reject button on the diff');
    if (!REAL_LLM) await waitFor('the proposal in the diff', async () => (await editorText('proposal')).includes('FIXED: validate the inputs of add'), 20_000);
    // the task waits for approval in the tree; the diff is the only prompt (no notification)
    await openAgentsView();
    await waitFor('awaiting approval in the tree', async () => (await treeRows()).some((r) => /awaiting approval/.test(r)), 10_000);
    await screenshot('diff-preview-awaiting-approval');
    if (await page.locator('.notifications-toasts .notification-toast', { hasText: 'proposes an edit' }).count()) {
      throw new Error('a second approval prompt (the server\'s notification) is up beside the diff');
    }
    await apply.click();
    await waitFor('the fix in calc.py', async () => {
      const t = await fileEditorText('calc.py');
      if (REAL_LLM) return t !== before;
      return t.includes('FIXED: validate the inputs of add') && t.includes('FIXME: validate the inputs of sub');
    }, 20_000);
    await waitFor('the diff preview to close', async () => (await page.locator('.monaco-diff-editor').count()) === 0, 10_000);
    await screenshot('edit-applied-from-diff');
  });

  await check('Reject in the diff closes it, changes nothing, and the task shows as rejected', async () => {
    await runCommand('Notifications: Clear All Notifications');
    await selectLines('calc.py', 14, 15);
    const before = await fileEditorText('calc.py');
    await page.keyboard.press('Control+.');
    await pickCodeAction('Add docs');
    await page.locator('.monaco-diff-editor').first().waitFor({ timeout: REAL_LLM ? 180_000 : 60_000 });
    const reject = page.locator('.editor-actions .action-label', { hasText: /^Reject$/ }).first();
    await reject.waitFor({ timeout: 20_000 });
    await screenshot('diff-reject');
    await reject.click();
    await waitFor('the diff preview to close', async () => (await page.locator('.monaco-diff-editor').count()) === 0, 10_000);
    await openAgentsView();
    await waitFor('a rejected document task in the tree', async () => (await treeRows()).some((r) => /^document #\d+.*rejected/.test(r)), 15_000);
    if ((await fileEditorText('calc.py')) !== before) throw new Error('a rejected edit changed the file');
    await screenshot('edit-rejected');
  });

  await check('an auto agent\'s edit lands in the buffer without asking (workspace/applyEdit)', async () => {
    await runCommand('Notifications: Clear All Notifications');
    await selectLines('calc.py', 9, 11);
    const before = await fileEditorText('calc.py');
    await runCommand('Infinity Matrix: Start Agent');
    const input = page.locator('.quick-input-widget input').first();
    await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'autoedit' }).first().waitFor({ timeout: 15_000 });
    await input.fill('autoedit');
    await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'autoedit' }).first().click();
    await waitFor('the auto edit in calc.py', async () => {
      const t = await fileEditorText('calc.py');
      return REAL_LLM ? t !== before : t.includes('FIXED: validate the inputs of sub');
    }, REAL_LLM ? 180_000 : 30_000);
    if (await page.locator('.notifications-toasts .notification-toast', { hasText: 'proposes an edit' }).count())
      throw new Error('an auto edit asked for approval');
    await screenshot('auto-edit-applied');
  });

  await check('Show Context Snapshot shows the items as a table in the Answers view (provenance, tokens; rows open)', async () => {
    await gotoLine('calc.py', 5);
    await runCommand('Infinity Matrix: Show Context Snapshot');
    const table = answerFrame().locator('#table');
    const text = await waitFor('the context table', async () => {
      const t = await table.innerText({ timeout: 500 }).catch(() => '');
      return t.includes('Context snapshot') ? t : undefined;
    }, 20_000);
    if (!/\d+ of \d+ tokens/.test(text)) throw new Error(`no token totals: ${text.slice(0, 300)}`);
    if (!/enclosingSymbol|selection/.test(text)) throw new Error(`no items: ${text.slice(0, 300)}`);
    if ((await table.locator('table.data th').count()) < 5) throw new Error('not a real table');
    await screenshot('context-snapshot');
  });

  await check('Show Audit Log is a table filterable by agent, kind and time', async () => {
    await runCommand('Infinity Matrix: Show Audit Log');
    const table = answerFrame().locator('#table');
    const text = await waitFor('the audit table', async () => {
      const t = await table.innerText({ timeout: 500 }).catch(() => '');
      return t.includes('Audit log') ? t : undefined;
    }, 20_000);
    if (!/transition/.test(text) || !/approval|edit/.test(text)) throw new Error(`audit entries missing: ${text.slice(0, 400)}`);
    if (!/autoedit/.test(text)) throw new Error('no task of this run in the audit log');
    // Filter by kind: only approvals stay.
    await table.locator('select[data-filter="1"]').selectOption('approval');
    const kinds = await table.locator('table.data tbody tr td:nth-child(2)').allInnerTexts();
    if (!kinds.length || kinds.some((k) => k.trim() !== 'approval')) throw new Error(`the kind filter kept ${JSON.stringify(kinds)}`);
    await screenshot('audit-log');
    await table.locator('button', { hasText: 'Back to answers' }).click();
  });

  await check('the Providers node shows the provider\'s health and circuit', async () => {
    await openAgentsView();
    const header = sidebar().getByRole('treeitem', { name: /Providers/ }).first();
    await header.waitFor({ timeout: 10_000 });
    if ((await header.getAttribute('aria-expanded')) !== 'true') await header.click();
    await waitFor('provider "fake" healthy', async () => (await treeRows()).some((r) => /^fake.*healthy/.test(r)), 10_000);
    await screenshot('providers');
  });

  await check('Test Connection runs doctor\'s checks on a provider and says what it found', async () => {
    await runCommand('Notifications: Clear All Notifications');
    await runCommand('Infinity Matrix: Test Connection');
    const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: 'fake' }).first();
    await row.waitFor({ timeout: 15_000 });
    await row.click();
    const toast = page.locator('.notifications-toasts .notification-toast', { hasText: /fake — reachable/ }).first();
    await toast.waitFor({ state: 'visible', timeout: 20_000 });
    await screenshot('test-connection');
  });

  await check('Restart Server keeps the task history and the answers (progress, then a confirmation)', async () => {
    await runCommand('Notifications: Clear All Notifications');
    await runCommand('Infinity Matrix: Restart Server');
    const confirmed = async () => {
      if (await page.locator('.notifications-toasts .notification-toast', { hasText: 'server restarted' }).count()) return true;
      return undefined;
    };
    const seen = await waitFor('the confirmation toast', confirmed, 15_000).catch(() => undefined);
    if (!seen) {
      // A toast can be folded into the notification centre at once: look there.
      await runCommand('Notifications: Show Notifications');
      await page.locator('.notifications-center .notification-list-item', { hasText: 'server restarted' }).first().waitFor({ timeout: 10_000 });
      await runCommand('Notifications: Hide Notifications');
    }
    if (/\[Error[^\]]*\] Server process exited with code 0/.test(extensionLog())) throw new Error('a clean restart logged "[Error] Server process exited with code 0"');
    await openAgentsView();
    await waitFor('the earlier tasks in the tree', async () => (await treeRows()).some((r) => /^explain #\d+ · calc\.py.*succeeded/.test(r)), 20_000);
    await waitFor('the rejected edit still rejected', async () => (await treeRows()).some((r) => /^document #\d+.*rejected/.test(r)), 10_000);
    const turn = answerFrame().locator('article.turn').last();
    const text = await turn.innerText({ timeout: 5_000 }).catch(() => '');
    if (!text.trim()) throw new Error('the Answers view lost its answer across the restart');
    if (/unknown task/i.test(extensionLog())) throw new Error('"unknown task" after the restart');
    await screenshot('after-restart');
  });

  await check('Set API Key stores the key in secret storage and hands it to the server (never to the log)', async () => {
    const secret = 'sk-e2e-SECRET-value-123';
    await runCommand('Infinity Matrix: Set API Key');
    const input = page.locator('.quick-input-widget input').first();
    await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'OPENAI_API_KEY' }).first().waitFor({ timeout: 15_000 });
    await input.fill('OPENAI_API_KEY');
    await page.keyboard.press('Enter');
    await page.locator('.quick-input-widget', { hasText: 'value of OPENAI_API_KEY' }).waitFor({ state: 'visible', timeout: 15_000 });
    if ((await input.getAttribute('type')) !== 'password') throw new Error('the key input is not a password field');
    await input.fill(secret);
    await page.keyboard.press('Enter');
    await page.locator('.notifications-toasts .notification-toast', { hasText: 'OPENAI_API_KEY stored in secret storage' }).first().waitFor({ timeout: 15_000 });
    await screenshot('api-key-stored');
    await waitFor('the key sent to the server', async () => extensionLog().includes('API key OPENAI_API_KEY sent to the server'), 10_000);
    const settingsText = fs.readFileSync(path.join(userDataDir, 'User', 'settings.json'), 'utf8');
    if (settingsText.includes(secret)) throw new Error('the key was written to settings.json');
    if (extensionLog().includes(secret)) throw new Error('the key appears in the log');
  });

  await check('a settings change reaches the server (didChangeConfiguration): a new agent appears in the tree', async () => {
    await rewriteUserSettings((st) => {
      st['infinityMatrix.agents'] = { ...st['infinityMatrix.agents'], e2eagent: { description: 'Added while running', output: 'answer' } };
    });
    await openAgentsView();
    await waitFor('agent e2eagent in the tree', async () => (await treeRows()).some((r) => r.startsWith('e2eagent')), 20_000);
  });

  await check('when the server dies the client restarts it with back-off and the status bar says so', async () => {
    const pid = serverPid();
    if (!pid) throw new Error('server process not found');
    process.kill(pid, 'SIGKILL');
    const down = await waitFor('"server down" in the status bar', async () => {
      const t = await monitorText();
      return /server down, restarting in \d+ s/.test(t) ? t : undefined;
    }, 15_000, 50);
    log(`status bar: ${JSON.stringify(down)}`);
    await screenshot('server-down');
    await waitFor('idle after the restart', async () => isIdle(await monitorText()), 60_000);
    const again = serverPid();
    if (!again || again === pid) throw new Error('no new server process');
  });

  await check('first run: Get Started opens the walkthrough; Configure Provider sets up a provider and tests the connection', async () => {
    await rewriteUserSettings((st) => {
      delete st['infinityMatrix.providers'];
      delete st['infinityMatrix.defaults.providers'];
    });
    await openAgentsView();
    const welcome = sidebar().locator('.welcome-view-content', { hasText: 'No AI provider is configured yet' }).first();
    await welcome.waitFor({ state: 'visible', timeout: 20_000 });
    await welcome.locator('.monaco-button, a', { hasText: 'Get Started' }).first().click();
    await page.locator('.gettingStartedContainer, .getting-started', { hasText: 'Get started with Infinity Matrix' }).first().waitFor({ timeout: 20_000 });
    await screenshot('walkthrough');
    await page.keyboard.press('Escape');
    await runCommand('Infinity Matrix: Configure Provider');
    const widget = page.locator('.quick-input-widget').first();
    const input = widget.locator('input').first();
    await widget.locator('.monaco-list-row', { hasText: 'OpenAI-compatible' }).first().click();
    // name, base URL, model, key: each an input box with its default
    await widget.filter({ hasText: 'A name for this provider' }).waitFor({ timeout: 10_000 });
    await input.fill('e2elocal');
    await page.keyboard.press('Enter');
    await widget.filter({ hasText: 'Base URL' }).waitFor({ timeout: 10_000 });
    await input.fill(baseUrl);
    await page.keyboard.press('Enter');
    await widget.filter({ hasText: 'Model' }).waitFor({ timeout: 10_000 });
    await input.fill(REAL_LLM ? REAL_MODEL : 'm');
    await page.keyboard.press('Enter');
    await widget.filter({ hasText: 'API key' }).waitFor({ timeout: 10_000 });
    if ((await input.getAttribute('type')) !== 'password') throw new Error('the key input is not a password field');
    await page.keyboard.press('Enter'); // a local server: no key
    await page.locator('.notifications-toasts .notification-toast', { hasText: /e2elocal — reachable/ }).first().waitFor({ timeout: 30_000 });
    await screenshot('provider-configured');
    const settingsText = fs.readFileSync(path.join(userDataDir, 'User', 'settings.json'), 'utf8');
    if (!settingsText.includes('"e2elocal"') || !settingsText.includes(baseUrl)) throw new Error(`settings.json lacks the provider: ${settingsText.slice(0, 400)}`);
    await waitFor('the agents again', async () => (await treeRows()).some((r) => r.startsWith('explain')), 15_000);
  });

  await check('with nothing configured, the Agents view shows the welcome content explaining setup', async () => {
    await rewriteUserSettings((st) => {
      delete st['infinityMatrix.providers'];
    });
    await openAgentsView();
    const welcome = sidebar().locator('.welcome-view-content', { hasText: 'No AI provider is configured yet' }).first();
    await welcome.waitFor({ state: 'visible', timeout: 20_000 });
    for (const b of ['Configure Provider', 'Get Started', 'Use the Built-in Local Chain'])
      if (!(await welcome.locator('.monaco-button, a', { hasText: b }).count())) throw new Error(`no "${b}" button`);
    await screenshot('welcome-view');
    await welcome.locator('.monaco-button, a', { hasText: 'Use the Built-in Local Chain' }).first().click();
    await waitFor('the agents again', async () => (await treeRows()).some((r) => r.startsWith('explain')), 15_000);
  });
  await screenshot('final');
}

let fatal;
try {
  await main();
} catch (e) {
  fatal = e;
  console.error('[e2e] FATAL', e);
  await screenshot('fatal');
} finally {
  try {
    await context?.close();
  } catch {}
  await stopServer();
  if (fake && fake.exitCode === null) fake.kill('SIGTERM');
  // keep the extension host's log next to the screenshots
  try {
    const logs = path.join(userDataDir, 'logs');
    for (const f of fs.readdirSync(logs, { recursive: true }).map(String)) {
      if (/Infinity Matrix|exthost/.test(f) && f.endsWith('.log')) fs.copyFileSync(path.join(logs, f), path.join(LOGDIR, path.basename(f).replace(/\s+/g, '-')));
    }
  } catch {}
  if (!process.env.KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
  else log(`kept ${tmp}`);
}
const passed = results.filter((r) => r.ok).length;
const failed = results.filter((r) => !r.ok).length + (fatal ? 1 : 0);
log(`screenshots: ${ARTIFACTS}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
