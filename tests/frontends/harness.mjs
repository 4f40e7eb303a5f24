// Shared helpers of the front-end tests: the binary under test, a fixture workspace per test
// (the Python fixture project plus configuration pointing at the mock provider), isolated
// XDG directories, spawned servers whose stderr is kept for failure messages, and time bounds.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
export const BIN = process.env.INFINITY_MATRIX_BIN
  ? path.resolve(process.env.INFINITY_MATRIX_BIN)
  : path.join(REPO, 'target', 'debug', 'infinity-matrix');
export const FIXTURE = path.join(REPO, 'server', 'tests', 'fixtures', 'project', 'python');

/** Per-test time bound (ms) for node:test's `timeout` option. */
export const TEST_TIMEOUT = 30_000;

// Every child spawned here, so none outlives the test file even if a hook fails.
const children = new Set();
process.on('exit', () => {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

/** The last `max` bytes of a stream's text, for failure messages. */
export class Tail {
  constructor(max = 6000) {
    this.max = max;
    this.text = '';
    this.listeners = new Set();
  }
  push(chunk) {
    this.text += chunk.toString('utf8');
    if (this.text.length > this.max * 2) this.text = this.text.slice(-this.max);
    for (const l of this.listeners) l(this.text);
  }
  toString() {
    return this.text.slice(-this.max);
  }
  /** Resolves with the first match of `re` in the text so far or later; rejects after `ms`. */
  waitFor(re, ms, what = String(re)) {
    return new Promise((resolve, reject) => {
      const check = (t) => {
        const m = re.exec(t);
        if (m) {
          cleanup();
          resolve(m);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${ms} ms waiting for ${what} on stderr`));
      }, ms);
      const cleanup = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check(this.text);
    });
  }
}

/** Runs `fn`; a failure gets the server's stderr tail appended to its message. */
export async function withStderr(tail, fn) {
  try {
    return await fn();
  } catch (err) {
    const t = typeof tail === 'function' ? tail() : tail;
    const s = t ? String(t) : '';
    if (err && typeof err === 'object' && !err.__stderrAttached) {
      const extra = `\n--- infinity-matrix stderr (tail) ---\n${s.trim() || '(empty)'}\n--- end stderr ---`;
      try {
        err.message = `${err.message}${extra}`;
        err.__stderrAttached = true;
      } catch {
        /* frozen error */
      }
    }
    throw err;
  }
}

/** `promise`, or a rejection naming `what` after `ms`. */
export function within(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value; rejects after `ms`. */
export async function until(fn, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

function tomlString(s) {
  return JSON.stringify(s); // a TOML basic string is JSON-compatible for these values
}

/**
 * A fresh temp dir: `<tmp>/ws` (the Python fixture project and a workspace config), the user
 * config `<tmp>/config/infinity-matrix/config.toml` naming the mock provider (a workspace file
 * may not define providers unless trusted, nor loosen approvals), `<tmp>/data`, `<tmp>/home`.
 * `extraUserToml` is appended to the user config (e.g. `[agents.fix]\napproval = "auto"`).
 */
export function makeWorkspace(mockUrl, { extraUserToml = '' } = {}) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'im-frontends-'));
  const ws = path.join(tmp, 'ws');
  fs.mkdirSync(ws, { recursive: true });
  for (const f of fs.readdirSync(FIXTURE)) {
    fs.copyFileSync(path.join(FIXTURE, f), path.join(ws, f));
  }
  const providerToml = `[providers.mock]
kind = "ollama"
base_url = ${tomlString(mockUrl)}
model = "m"
max_attempts = 1
`;
  fs.writeFileSync(
    path.join(ws, '.infinity-matrix.toml'),
    `[defaults]
providers = ["mock"]
`,
  );
  const cfgDir = path.join(tmp, 'config', 'infinity-matrix');
  fs.mkdirSync(cfgDir, { recursive: true });
  fs.writeFileSync(
    path.join(cfgDir, 'config.toml'),
    `${providerToml}
[defaults]
providers = ["mock"]
agent = "explain"
${extraUserToml}
`,
  );
  for (const d of ['data', 'home']) fs.mkdirSync(path.join(tmp, d), { recursive: true });
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: path.join(tmp, 'home'),
    XDG_CONFIG_HOME: path.join(tmp, 'config'),
    XDG_DATA_HOME: path.join(tmp, 'data'),
    XDG_CACHE_HOME: path.join(tmp, 'cache'),
    INFINITY_MATRIX_LOG: 'warn',
    NO_COLOR: '1',
  };
  return {
    tmp,
    ws,
    env,
    file: (name) => path.join(ws, name),
    read: (name) => fs.readFileSync(path.join(ws, name), 'utf8'),
    cleanup: () => fs.rmSync(tmp, { recursive: true, force: true }),
  };
}

/** Lines `from`..`to` (1-based, inclusive) of `text`, each with its newline. */
export function lines(text, from, to) {
  const all = text.split('\n');
  return all.slice(from - 1, to).map((l) => l + '\n').join('');
}

/**
 * Spawns the binary with `args`; stdout is piped and left to the caller, stderr goes to a Tail.
 * Returns {child, stderr, exited: Promise<{code, signal}>, kill()}.
 */
export function spawnServer(args, { cwd, env }) {
  if (!fs.existsSync(BIN)) {
    throw new Error(`the binary under test is missing: ${BIN} (build it, or set INFINITY_MATRIX_BIN)`);
  }
  const child = spawn(BIN, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  const stderr = new Tail();
  child.stderr.on('data', (c) => stderr.push(c));
  child.stdin.on('error', () => {}); // EPIPE after the server exited is reported through `exited`
  const exited = new Promise((resolve) => {
    child.once('error', (err) => resolve({ code: null, signal: null, error: err }));
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  return {
    child,
    stderr,
    exited,
    /** Closes stdin, then SIGTERM, then SIGKILL; resolves when the process is gone. */
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        child.stdin.end();
      } catch {
        /* closed */
      }
      const gone = await Promise.race([exited.then(() => true), sleep(1500).then(() => false)]);
      if (gone) return;
      child.kill('SIGTERM');
      const gone2 = await Promise.race([exited.then(() => true), sleep(2000).then(() => false)]);
      if (!gone2) child.kill('SIGKILL');
      await Promise.race([exited, sleep(2000)]);
    },
  };
}

/** Kills a process by pid if it still runs (a safety net for SDK-spawned children). */
export function killPid(pid) {
  if (!pid) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}
