import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isProviderName, PROVIDER_CHOICES, providerEntry, withProvider } from '../src/providerSetup';

const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as {
  contributes: {
    walkthroughs: { steps: { media: { markdown: string }; description: string }[] }[];
    viewsWelcome: { when?: string; contents: string }[];
    commands: { command: string }[];
  };
};

describe('Configure Provider', () => {
  it('offers the local model, Ollama, OpenAI-compatible, Anthropic, Gemini and Vertex', () => {
    expect(PROVIDER_CHOICES.map((c) => c.kind)).toEqual(['embedded', 'ollama', 'openai', 'anthropic', 'gemini', 'vertex']);
  });

  it('writes the configuration keys the server reads, the key by name only', () => {
    const openai = PROVIDER_CHOICES.find((c) => c.kind === 'openai')!;
    expect(providerEntry(openai, { name: 'openai', baseUrl: 'http://127.0.0.1:8080/v1', model: 'm', keyEnv: 'OPENAI_API_KEY' })).toEqual({
      kind: 'openai',
      base_url: 'http://127.0.0.1:8080/v1',
      model: 'm',
      api_key_env: 'OPENAI_API_KEY',
    });
    const vertex = PROVIDER_CHOICES.find((c) => c.kind === 'vertex')!;
    expect(providerEntry(vertex, { name: 'v', model: 'g', project: 'p', location: 'l' })).toEqual({
      kind: 'vertex',
      model: 'g',
      project: 'p',
      location: 'l',
      token_command: 'gcloud auth print-access-token',
    });
  });

  it('puts the new provider first in the default chain and keeps the others', () => {
    const r = withProvider({ local: { kind: 'openai' } }, ['local', 'gone'], 'claude', { kind: 'anthropic' });
    expect(Object.keys(r.providers)).toEqual(['local', 'claude']);
    expect(r.chain).toEqual(['claude', 'local']);
    expect(withProvider(undefined, null, 'x', { kind: 'ollama' }).chain).toEqual(['x']);
  });

  it('accepts names the configuration accepts', () => {
    expect(isProviderName('my-local_1')).toBe(true);
    expect(isProviderName('has space')).toBe(false);
    expect(isProviderName('')).toBe(false);
  });
});

describe('first run', () => {
  it('the walkthrough steps have their media and run real commands', () => {
    const known = new Set(pkg.contributes.commands.map((c) => c.command));
    for (const step of pkg.contributes.walkthroughs[0].steps) {
      expect(fs.existsSync(path.join(__dirname, '..', step.media.markdown)), step.media.markdown).toBe(true);
      for (const m of step.description.matchAll(/\(command:([\w.-]+)/g)) expect(known, m[1]).toContain(m[1]);
    }
  });

  it('the no-provider welcome is short, with buttons and no JSON', () => {
    const w = pkg.contributes.viewsWelcome.find((v) => v.when?.includes('unconfigured'))!;
    expect(w.contents).not.toMatch(/[{}]/);
    expect(w.contents).toContain('command:infinity-matrix.configureProvider');
    expect(w.contents.split('\n').filter((l) => !l.startsWith('[')).length).toBeLessThanOrEqual(3);
    // No repository-relative script paths in the extension's advice.
    for (const v of pkg.contributes.viewsWelcome) expect(v.contents).not.toMatch(/scripts\/|\.sh\b|cargo build/);
  });
});
