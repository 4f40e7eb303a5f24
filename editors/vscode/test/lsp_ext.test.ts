import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { INDEX_SETTINGS, initializationOptions, isTerminal, Methods, parseStatus, parseTaskEvent, SERVER_CONFIG_KEYS, ServerCommands, serverSettings } from '../src/lsp_ext';
import { task } from './fixtures';

const EXT_RS = path.resolve(__dirname, '../../../server/src/lsp/ext.rs');
const SCHEMA = path.resolve(__dirname, '../../../docs/config.schema.json');

describe('protocol names match the server (server/src/lsp/ext.rs)', () => {
  const rust = fs.readFileSync(EXT_RS, 'utf8');
  const consts = new Map<string, string>();
  for (const m of rust.matchAll(/pub const (\w+): &str = "([^"]+)";/g)) consts.set(m[1] ?? '', m[2] ?? '');

  it('every infinityMatrix/* method of the server is known to the client', () => {
    const serverMethods = [...consts.values()].filter((v) => v.startsWith('infinityMatrix/'));
    expect(serverMethods.length).toBeGreaterThan(5);
    for (const m of serverMethods) expect(Object.values(Methods)).toContain(m);
    for (const m of Object.values(Methods)) expect(serverMethods).toContain(m);
  });

  it('every executeCommand command of the server is known to the client', () => {
    const serverCommands = [...consts.values()].filter((v) => v.startsWith('infinity-matrix.'));
    expect(new Set(serverCommands)).toEqual(new Set(Object.values(ServerCommands)));
  });

  it('the configuration section name', () => {
    expect(consts.get('CONFIG_SECTION')).toBe('infinityMatrix');
  });
});

describe('settings handed to the server', () => {
  it('keeps the server keys only (its parser rejects unknown fields)', () => {
    const section = {
      server: { path: '/x' },
      log: { level: 'debug' },
      trace: { server: 'off' },
      ui: { openResults: true },
      providers: { local: { kind: 'openai', model: 'm' } },
      defaults: { agent: 'explain' },
    };
    expect(serverSettings(section)).toEqual({ providers: section.providers, defaults: section.defaults });
    expect(serverSettings(null)).toEqual({});
    expect(serverSettings([1])).toEqual({});
  });

  it('the server keys are top-level keys of the server schema', () => {
    const schema = JSON.parse(fs.readFileSync(SCHEMA, 'utf8')) as { properties: Record<string, unknown> };
    for (const k of SERVER_CONFIG_KEYS) expect(Object.keys(schema.properties)).toContain(k);
  });
});

describe('initializationOptions from the index settings', () => {
  const from = (settings: Record<string, unknown>) => initializationOptions((key) => settings[key]);

  it('passes valid values through', () => {
    expect(from({ maxFileSizeBytes: 2048, excludeDirs: ['gen', 'third'], treeCacheSize: 8, maxParseBytes: 4096 })).toEqual({
      maxFileSizeBytes: 2048,
      excludeDirs: ['gen', 'third'],
      treeCacheSize: 8,
      maxParseBytes: 4096,
    });
  });

  it('leaves out what the server would reject, so its defaults apply', () => {
    expect(from({})).toEqual({});
    expect(from({ maxFileSizeBytes: 0, excludeDirs: [], treeCacheSize: 2.5, maxParseBytes: 1023 })).toEqual({});
    expect(from({ maxFileSizeBytes: '1', excludeDirs: 'gen', treeCacheSize: -1 })).toEqual({});
    expect(from({ excludeDirs: ['ok', 3, ' ', null] })).toEqual({ excludeDirs: ['ok'] });
  });

  it('names the fields of the server\'s InitializationOptions', () => {
    const rust = fs.readFileSync(EXT_RS, 'utf8');
    const body = /pub struct InitializationOptions \{([\s\S]*?)\n\}/.exec(rust)?.[1] ?? '';
    const fields = [...body.matchAll(/pub (\w+):/g)].map((m) => (m[1] ?? '').replace(/_(\w)/g, (_, c: string) => c.toUpperCase()));
    expect(fields).toContain('config');
    for (const key of INDEX_SETTINGS) expect(fields).toContain(key);
    expect(fields.filter((f) => f !== 'config').sort()).toEqual([...INDEX_SETTINGS].sort());
  });
});

describe('validating notifications', () => {
  it('task events', () => {
    expect(parseTaskEvent({ type: 'chunk', taskId: 't', seq: 1, text: 'x' })).toEqual({ type: 'chunk', taskId: 't', seq: 1, text: 'x' });
    expect(parseTaskEvent({ type: 'reset', taskId: 't', seq: 2 })).toEqual({ type: 'reset', taskId: 't', seq: 2, reason: '' });
    expect(parseTaskEvent({ type: 'state', task: task({ id: 'a' }) })?.type).toBe('state');
    expect(parseTaskEvent({ type: 'state', task: { id: 'a' } })).toBeUndefined();
    expect(parseTaskEvent({ type: 'chunk', taskId: 't', seq: '1', text: 'x' })).toBeUndefined();
    expect(parseTaskEvent({ type: 'other' })).toBeUndefined();
    expect(parseTaskEvent(null)).toBeUndefined();
  });

  it('agent status drops malformed entries and fills defaults', () => {
    const s = parseStatus({
      agents: [{ name: 'explain', description: 'E', state: 'idle', output: 'answer' }, { bogus: true }],
      tasks: [task({ id: 'a' }), { id: 'broken' }],
      providers: [{ name: 'local', circuit: 'half_open' }],
      running: 1,
      queued: 'x',
    });
    expect(s?.agents).toHaveLength(1);
    expect(s?.agents[0]).toMatchObject({ running: 0, queued: 0, providers: [] });
    expect(s?.tasks.map((t) => t.id)).toEqual(['a']);
    expect(s?.providers[0]).toMatchObject({ name: 'local', circuit: 'half_open', consecutiveFailures: 0, error: null, kind: '' });
    expect(s?.running).toBe(1);
    expect(s?.queued).toBe(0);
    expect(parseStatus('nope')).toBeUndefined();
  });

  it('terminal states', () => {
    expect(['succeeded', 'failed', 'cancelled'].every((s) => isTerminal(s as never))).toBe(true);
    expect(['queued', 'running', 'awaiting_approval'].some((s) => isTerminal(s as never))).toBe(false);
  });
});
