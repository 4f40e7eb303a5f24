// Every configuration example in the documentation validates against the settings schema the
// extension ships (package.json `contributes.configuration`) and against the server's own schema
// (docs/config.schema.json), with a real JSON Schema validator.
import fs from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import type { ValidateFunction } from 'ajv';
import { parse as parseToml } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { SERVER_CONFIG_KEYS } from '../src/lsp_ext';

const root = path.resolve(__dirname, '../../..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'editors/vscode/package.json'), 'utf8')) as {
  contributes: { configuration: { properties: Record<string, object> }[] };
};
const serverSchema = JSON.parse(fs.readFileSync(path.join(root, 'docs/config.schema.json'), 'utf8')) as object;

/** Keys of the configuration file that are not VS Code settings (user file only). */
const FILE_ONLY = ['trusted_workspaces', 'log_level'];

/** Keywords VS Code's settings editor adds to JSON Schema. */
const VSCODE_KEYWORDS = [
  'markdownDescription',
  'enumDescriptions',
  'markdownEnumDescriptions',
  'scope',
  'order',
  'deprecationMessage',
  'markdownDeprecationMessage',
  'editPresentation',
];

function validator(): Ajv2020 {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  ajv.addVocabulary(VSCODE_KEYWORDS);
  // schemars' number formats (uint64, double, …): sizes and ranges are what matter here.
  for (const f of ['uint', 'uint8', 'uint16', 'uint32', 'uint64', 'int32', 'int64', 'float', 'double']) {
    ajv.addFormat(f, true);
  }
  return ajv;
}

const settings: Map<string, ValidateFunction> = (() => {
  const ajv = validator();
  const out = new Map<string, ValidateFunction>();
  for (const section of pkg.contributes.configuration) {
    for (const [key, schema] of Object.entries(section.properties)) out.set(key, ajv.compile(schema));
  }
  return out;
})();

const server: ValidateFunction = validator().compile(serverSchema);

interface Example {
  where: string;
  kind: 'toml' | 'settings';
  text: string;
}

/** Fenced blocks of a Markdown file: TOML configuration files and settings.json fragments. */
function examples(file: string): Example[] {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  const out: Example[] = [];
  const fence = /^```(\w+)\n([\s\S]*?)^```/gm;
  for (let m = fence.exec(text); m; m = fence.exec(text)) {
    const [, lang, body] = m;
    const line = text.slice(0, m.index).split('\n').length;
    const where = `${file}:${line}`;
    // Helix's languages.toml is another program's file.
    if (lang === 'toml' && !body.includes('[language-server.')) out.push({ where, kind: 'toml', text: body });
    else if ((lang === 'json' || lang === 'jsonc') && body.includes('"infinityMatrix.')) {
      out.push({ where, kind: 'settings', text: body });
    }
  }
  return out;
}

const DOCS = ['docs/configuration.md', 'docs/editors.md', 'README.md', 'editors/vscode/README.md'];
const all = DOCS.flatMap(examples);

/** A configuration file's object as the settings VS Code would hold (`infinityMatrix.KEY[.NAME]`). */
function asSettings(config: Record<string, unknown>): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [key, value] of Object.entries(config)) {
    if (FILE_ONLY.includes(key)) continue;
    if (key === 'providers' || key === 'agents') {
      out.set(`infinityMatrix.${key}`, value);
    } else if (value && typeof value === 'object' && !Array.isArray(value)) {
      for (const [name, v] of Object.entries(value)) out.set(`infinityMatrix.${key}.${name}`, v);
    } else {
      out.set(`infinityMatrix.${key}`, value);
    }
  }
  return out;
}

function errorsOf(validate: ValidateFunction): string {
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`).join('; ');
}

function checkSettings(where: string, values: Map<string, unknown>): void {
  for (const [key, value] of values) {
    const validate = settings.get(key);
    expect(validate, `${where}: ${key} is not a setting the extension contributes`).toBeDefined();
    if (!validate) continue;
    const ok = validate(value);
    expect(ok, `${where}: ${key}: ${errorsOf(validate)}`).toBe(true);
  }
}

describe('configuration examples in the documentation', () => {
  it('finds the examples (TOML reference, editor setup, VS Code settings)', () => {
    expect(all.filter((e) => e.kind === 'toml').length).toBeGreaterThanOrEqual(2);
    expect(all.filter((e) => e.kind === 'settings').length).toBeGreaterThanOrEqual(1);
  });

  for (const example of all) {
    it(`${example.where} validates against the shipped settings schema and the server's schema`, () => {
      if (example.kind === 'toml') {
        const config = parseToml(example.text) as Record<string, unknown>;
        expect(server(config), `${example.where}: ${errorsOf(server)}`).toBe(true);
        for (const key of Object.keys(config)) {
          expect([...SERVER_CONFIG_KEYS, ...FILE_ONLY], `${example.where}: top-level key ${key}`).toContain(key);
        }
        checkSettings(example.where, asSettings(config));
      } else {
        const withoutComments = example.text.replace(/^\s*\/\/.*$/gm, '');
        const values = JSON.parse(`{${withoutComments}}`) as Record<string, unknown>;
        checkSettings(example.where, new Map(Object.entries(values)));
      }
    });
  }

  it('the validator rejects what the server rejects (an unknown agent field, a wrong type)', () => {
    const agents = settings.get('infinityMatrix.agents');
    expect(agents?.({ quick: { description: 'Quick fix', output: 'edit' } })).toBe(true);
    expect(agents?.({ quick: { descripton: 'typo' } })).toBe(false);
    expect(agents?.({ quick: { concurrency: 'two' } })).toBe(false);
    expect(server({ agents: { quick: { descripton: 'typo' } } })).toBe(false);
  });

  it('no setting carries a description that is not text', () => {
    const bad: string[] = [];
    const walk = (node: unknown, at: string): void => {
      if (!node || typeof node !== 'object') return;
      for (const [k, v] of Object.entries(node)) {
        if ((k === 'markdownDescription' || k === 'description') && typeof v !== 'string' && at.endsWith('properties') === false) {
          bad.push(`${at}.${k}`);
        }
        if (typeof v === 'string' && v.includes('[object Object]')) bad.push(`${at}.${k}`);
        walk(v, `${at}.${k}`);
      }
    };
    walk(pkg.contributes.configuration, 'configuration');
    expect(bad).toEqual([]);
  });
});
