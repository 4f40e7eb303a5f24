// Generates the server part of `contributes.configuration` in package.json from the server's
// JSON Schema (docs/config.schema.json, generated from the Rust types), so the settings VS Code
// offers are exactly the keys the server accepts.
//
//   node scripts/sync-schema.mjs           rewrite package.json
//   node scripts/sync-schema.mjs --check   exit 1 when package.json is out of date
//
// `providers` and `agents` become one object setting each (their entries follow the schema);
// `defaults`, `policy`, `audit` and `metrics` become one setting per key
// (`infinityMatrix.defaults.agent`, …). VS Code hands the server the `infinityMatrix` section
// as one nested object, the shape of the configuration file.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const extDir = path.resolve(here, '..');
const schemaPath = path.resolve(extDir, '../../docs/config.schema.json');
const pkgPath = path.join(extDir, 'package.json');
export const GENERATED_TITLE = 'Infinity Matrix: Providers, Agents and Policy';

/**
 * Setting scopes. Anything that decides where code and keys are sent (providers, metrics),
 * what runs on its own (agents: approvals, triggers), or what is recorded (policy, audit) is
 * `application`: only user settings can set it, never a workspace's `.vscode/settings.json`
 * (workspaces configure agents in `.infinity-matrix.toml`, which the server restricts).
 * `defaults` only chooses among what the user configured: `window`.
 */
const SCOPES = {
  providers: 'application',
  agents: 'application',
  defaults: 'window',
  policy: 'application',
  audit: 'application',
  metrics: 'application',
};

const DESCRIPTIONS = {
  providers:
    'LLM endpoints by name (the configuration file\'s `[providers.NAME]` tables). Example: `{"local": {"kind": "openai", "base_url": "http://127.0.0.1:8080/v1", "model": "smollm2"}}`. Keys are never written here: name the variable in `api_key_env` and store its value with **Infinity Matrix: Set API Key**. User settings only (application scope), so a workspace cannot redirect your code or keys.',
  agents:
    'Agents by name; a built-in (explain, fix, document, tests, refactor, review) is overridden key by key. User settings only (application scope): a repository adds agents in its `.infinity-matrix.toml`, where the server only lets it tighten approvals.',
};

function resolveRef(schema, ref) {
  const name = ref.replace(/^#\/\$defs\//, '');
  const def = schema.$defs?.[name];
  if (!def) throw new Error(`unknown $ref ${ref}`);
  return def;
}

/** Inlines $refs and converts the schema to what VS Code's settings editor understands. */
function convert(schema, node) {
  if (Array.isArray(node)) return node.map((n) => convert(schema, n));
  if (!node || typeof node !== 'object') return node;
  if (node.$ref) {
    const { $ref, ...rest } = node;
    return convert(schema, { ...resolveRef(schema, $ref), ...rest });
  }
  // oneOf of string consts (Approval) → enum with descriptions
  if (Array.isArray(node.oneOf) && node.oneOf.every((o) => o && typeof o.const === 'string')) {
    const { oneOf, ...rest } = node;
    return convert(schema, {
      ...rest,
      type: 'string',
      enum: oneOf.map((o) => o.const),
      enumDescriptions: oneOf.map((o) => o.description ?? ''),
    });
  }
  // anyOf [X, null] → X with null allowed
  if (Array.isArray(node.anyOf) && node.anyOf.length === 2 && node.anyOf.some((o) => o.type === 'null')) {
    const { anyOf, ...rest } = node;
    const inner = convert(schema, anyOf.find((o) => o.type !== 'null'));
    const merged = { ...inner, ...rest };
    if (typeof merged.type === 'string') merged.type = [merged.type, 'null'];
    else if (Array.isArray(merged.type) && !merged.type.includes('null')) merged.type = [...merged.type, 'null'];
    if (merged.enum && !merged.enum.includes(null)) {
      merged.enum = [...merged.enum, null];
      if (merged.enumDescriptions) merged.enumDescriptions = [...merged.enumDescriptions, 'Not set'];
    }
    return merged;
  }
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'format' || k === '$schema' || k === 'title') continue; // uint/float formats: not JSON Schema for VS Code
    // `properties` maps names to schemas: a property may be called `description` (an agent's),
    // so its keys are names, never keywords.
    if (k === 'properties' && v && typeof v === 'object' && !Array.isArray(v)) {
      out.properties = Object.fromEntries(Object.entries(v).map(([name, sub]) => [name, convert(schema, sub)]));
      continue;
    }
    if (k === 'description') {
      out.markdownDescription = String(v).replace(/\n/g, ' ');
      continue;
    }
    out[k] = convert(schema, v);
  }
  return out;
}

export function generate(schema) {
  const properties = {};
  for (const key of ['providers', 'agents']) {
    const top = schema.properties[key];
    const entry = convert(schema, top.additionalProperties);
    properties[`infinityMatrix.${key}`] = {
      type: 'object',
      default: {},
      scope: SCOPES[key],
      markdownDescription: DESCRIPTIONS[key],
      additionalProperties: entry,
    };
  }
  for (const key of ['defaults', 'policy', 'audit', 'metrics']) {
    const top = schema.properties[key];
    const def = resolveRef(schema, top.$ref);
    for (const [name, prop] of Object.entries(def.properties)) {
      const setting = convert(schema, prop);
      if (!('default' in setting)) setting.default = top.default?.[name] ?? null;
      setting.scope = SCOPES[key];
      if (!setting.markdownDescription) setting.markdownDescription = `\`${key}.${name}\` of the configuration file.`;
      properties[`infinityMatrix.${key}.${name}`] = setting;
    }
  }
  // context budget and concurrency: no description in the schema
  const budget = properties['infinityMatrix.defaults.context_budget_tokens'];
  if (budget && budget.markdownDescription.startsWith('`')) {
    budget.markdownDescription = 'Token budget of the context snapshot given to agents (and shown by **Show Context Snapshot**).';
  }
  return { title: GENERATED_TITLE, properties };
}

function main() {
  const schema = JSON.parse(fs.readFileSync(schemaPath, 'utf8'));
  const raw = fs.readFileSync(pkgPath, 'utf8');
  const pkg = JSON.parse(raw);
  const sections = pkg.contributes.configuration.filter((c) => c.title !== GENERATED_TITLE);
  sections.push(generate(schema));
  pkg.contributes.configuration = sections;
  const next = JSON.stringify(pkg, null, 2) + '\n';
  if (process.argv.includes('--check')) {
    if (next !== raw) {
      console.error('editors/vscode/package.json is out of date with docs/config.schema.json: run `npm run -w editors/vscode sync-schema`');
      process.exit(1);
    }
    console.log('package.json settings match docs/config.schema.json');
    return;
  }
  fs.writeFileSync(pkgPath, next);
  console.log(`wrote ${Object.keys(generate(schema).properties).length} settings to ${path.relative(process.cwd(), pkgPath)}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main();
}
