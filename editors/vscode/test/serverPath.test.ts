import { describe, expect, it } from 'vitest';
import { type Lookup, type Probe, resolveServer } from '../src/serverPath';

function probe(files: Record<string, { exec?: boolean; text?: string }>): Probe & { chmodded: string[] } {
  const chmodded: string[] = [];
  return {
    chmodded,
    isFile: (p) => p in files,
    isExecutable: (p) => files[p]?.exec === true,
    makeExecutable: (p) => {
      if (!(p in files)) return false;
      chmodded.push(p);
      (files[p] as { exec?: boolean }).exec = true;
      return true;
    },
    readText: (p) => files[p]?.text,
  };
}

const base: Lookup = {
  configured: '',
  extensionPath: '/ext',
  platform: 'linux',
  arch: 'x64',
  env: { PATH: '/usr/local/bin:/opt/im/bin' },
  home: '/home/u',
};

describe('finding the server', () => {
  it('the setting wins, with ~ expanded', () => {
    const r = resolveServer({ ...base, configured: '~/bin/infinity-matrix' }, probe({ '/home/u/bin/infinity-matrix': { exec: true }, '/ext/server/infinity-matrix': { exec: true } }));
    expect(r).toEqual({ ok: true, path: '/home/u/bin/infinity-matrix', source: 'setting' });
  });

  it('a setting pointing nowhere is an error with the fix (no silent fallback)', () => {
    const r = resolveServer({ ...base, configured: '/nope/infinity-matrix' }, probe({ '/ext/server/infinity-matrix': { exec: true } }));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.message).toContain('/nope/infinity-matrix');
      expect(r.fix).toContain('cargo build --release');
    }
    expect(resolveServer({ ...base, configured: 'relative/im' }, probe({})).ok).toBe(false);
  });

  it('then the packaged binary for this platform (made executable if the .vsix lost the bit)', () => {
    const p = probe({ '/ext/server/infinity-matrix': { exec: false }, '/ext/server/target.txt': { text: 'linux-x64\n' } });
    expect(resolveServer(base, p)).toEqual({ ok: true, path: '/ext/server/infinity-matrix', source: 'bundled' });
    expect(p.chmodded).toEqual(['/ext/server/infinity-matrix']);
  });

  it('a packaged binary for another platform is skipped', () => {
    const r = resolveServer(
      { ...base, platform: 'darwin', arch: 'arm64' },
      probe({ '/ext/server/infinity-matrix': { exec: true }, '/ext/server/target.txt': { text: 'linux-x64' }, '/opt/im/bin/infinity-matrix': { exec: true } }),
    );
    expect(r).toEqual({ ok: true, path: '/opt/im/bin/infinity-matrix', source: 'path' });
  });

  it('then PATH', () => {
    const r = resolveServer(base, probe({ '/opt/im/bin/infinity-matrix': { exec: true }, '/usr/local/bin/infinity-matrix': { exec: false } }));
    expect(r).toEqual({ ok: true, path: '/opt/im/bin/infinity-matrix', source: 'path' });
  });

  it('nothing found: says so, with the fix', () => {
    const r = resolveServer(base, probe({}));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.message).toContain('not found');
      expect(r.fix).toContain('infinityMatrix.server.path');
    }
  });
});
