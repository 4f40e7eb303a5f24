import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { INDEX_SETTINGS, ServerCommands } from '../src/lsp_ext';

interface Manifest {
  name: string;
  displayName: string;
  publisher: string;
  engines: { vscode: string };
  main: string;
  contributes: {
    commands: { command: string; title: string }[];
    keybindings: { command: string; key: string; when?: string }[];
    menus: Record<string, { command: string; when?: string }[]>;
    configuration: { title: string; properties: Record<string, { default?: unknown; scope?: string; description?: string; markdownDescription?: string }> }[];
    viewsContainers: { activitybar: { id: string; title: string }[] };
    views: Record<string, { id: string }[]>;
    viewsWelcome: { view: string; contents: string; when?: string }[];
  };
}

const dir = path.resolve(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as Manifest;

describe('package.json', () => {
  it('fixed names', () => {
    expect(pkg.name).toBe('infinity-matrix-agent');
    expect(pkg.displayName).toBe('Infinity Matrix Agent');
    expect(pkg.publisher).toBe('InfinityXOne');
    expect(pkg.main).toBe('./dist/extension.js');
  });

  it('engines.vscode allows VS Code 1.100 (code-server 4.100)', () => {
    const m = /^\^1\.(\d+)\.\d+$/.exec(pkg.engines.vscode);
    expect(m).not.toBeNull();
    expect(Number(m?.[1])).toBeLessThanOrEqual(100);
  });

  it('contributes every server command and the extension commands', () => {
    const ids = pkg.contributes.commands.map((c) => c.command);
    for (const c of Object.values(ServerCommands)) expect(ids).toContain(c);
    for (const c of ['infinity-matrix.showContext', 'infinity-matrix.showAudit', 'infinity-matrix.setApiKey', 'infinity-matrix.restartServer', 'infinity-matrix.showLog']) {
      expect(ids).toContain(c);
    }
    for (const c of ids) expect(c.startsWith('infinity-matrix.')).toBe(true);
  });

  it('menus and keybindings only name contributed commands', () => {
    const ids = new Set(pkg.contributes.commands.map((c) => c.command));
    for (const [menu, items] of Object.entries(pkg.contributes.menus)) {
      for (const item of items) expect(ids.has(item.command), `${menu}: ${item.command}`).toBe(true);
    }
    for (const k of pkg.contributes.keybindings) expect(ids.has(k.command)).toBe(true);
    expect(pkg.contributes.keybindings.some((k) => k.command === 'infinity-matrix.executePrompt')).toBe(true);
  });

  it('an infinityMatrix.index.* setting for each initializationOption, with the server\'s defaults', () => {
    const props = pkg.contributes.configuration.flatMap((c) => Object.entries(c.properties));
    const get = (key: string) => props.find(([k]) => k === `infinityMatrix.index.${key}`)?.[1];
    for (const key of INDEX_SETTINGS) expect(get(key), key).toBeDefined();
    expect(get('maxFileSizeBytes')?.default).toBe(1024 * 1024);
    expect(get('treeCacheSize')?.default).toBe(4);
    expect(get('maxParseBytes')?.default).toBe(2 * 1024 * 1024);
    expect(get('excludeDirs')?.default).toEqual([]);
  });

  it('editor context menu entries have when clauses', () => {
    for (const item of pkg.contributes.menus['editor/context'] ?? []) expect(item.when).toBeTruthy();
  });

  it('the Agents view lives in its own activity bar container, with welcome content', () => {
    expect(pkg.contributes.viewsContainers.activitybar[0]).toMatchObject({ id: 'infinityMatrix', title: 'Infinity Matrix' });
    expect(pkg.contributes.views.infinityMatrix?.[0]?.id).toBe('infinityMatrixAgents');
    // The answer panel: a webview view in the same container.
    expect(pkg.contributes.views.infinityMatrix?.[1]).toMatchObject({ id: 'infinityMatrixAnswer', type: 'webview' });
    expect(pkg.contributes.viewsWelcome.some((w) => w.when?.includes('unconfigured'))).toBe(true);
    expect(pkg.contributes.viewsWelcome.some((w) => w.when?.includes('missing'))).toBe(true);
  });

  it('every setting has a description and a default; provider settings cannot come from a workspace', () => {
    const props = Object.assign({}, ...pkg.contributes.configuration.map((c) => c.properties)) as Manifest['contributes']['configuration'][0]['properties'];
    for (const [key, p] of Object.entries(props)) {
      expect(p.description ?? p.markdownDescription, key).toBeTruthy();
      expect('default' in p, key).toBe(true);
    }
    expect(props['infinityMatrix.providers']?.scope).toBe('application');
    expect(props['infinityMatrix.agents']?.scope).toBe('application');
    expect(props['infinityMatrix.metrics.listen']?.scope).toBe('application');
    expect(props['infinityMatrix.server.path']?.scope).toBe('machine');
    expect(props['infinityMatrix.log.level']?.default).toBe('info');
  });

  it('the server settings are generated from docs/config.schema.json (npm run sync-schema)', async () => {
    // @ts-expect-error: plain ESM script without types
    const { generate, GENERATED_TITLE } = (await import('../scripts/sync-schema.mjs')) as {
      generate: (s: unknown) => { title: string; properties: Record<string, unknown> };
      GENERATED_TITLE: string;
    };
    const schema = JSON.parse(fs.readFileSync(path.resolve(dir, '../../docs/config.schema.json'), 'utf8')) as unknown;
    const section = pkg.contributes.configuration.find((c) => c.title === GENERATED_TITLE);
    expect(section).toEqual(generate(schema));
  });

  it('ships a README and a LICENSE', () => {
    expect(fs.existsSync(path.join(dir, 'README.md'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'LICENSE'))).toBe(true);
  });
});
