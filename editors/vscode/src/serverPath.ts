/**
 * Finding the server binary, without `vscode` (the file system is injected for tests):
 * the `infinityMatrix.server.path` setting, else the binary packaged in the extension
 * (`server/infinity-matrix`, for the platform named in `server/target.txt`), else
 * `infinity-matrix` on PATH.
 */
import * as path from 'path';

export const SERVER_BINARY = 'infinity-matrix';

export interface Probe {
  /** A regular file (following symlinks). */
  isFile(p: string): boolean;
  /** Executable by this process (always true on Windows for an existing file). */
  isExecutable(p: string): boolean;
  /** Makes a file executable; false when that failed. */
  makeExecutable(p: string): boolean;
  readText(p: string): string | undefined;
}

export interface Lookup {
  /** The setting's value (may be empty). */
  configured: string | undefined;
  extensionPath: string;
  platform: string; // process.platform
  arch: string; // process.arch
  env: Record<string, string | undefined>;
  home: string;
}

export type Resolution =
  | { ok: true; path: string; source: 'setting' | 'bundled' | 'path' }
  | { ok: false; message: string; fix: string };

function exeName(platform: string): string {
  return platform === 'win32' ? `${SERVER_BINARY}.exe` : SERVER_BINARY;
}

export function expandHome(p: string, home: string): string {
  if (p === '~') return home;
  if (p.startsWith('~/') || p.startsWith('~\\')) return path.join(home, p.slice(2));
  return p;
}

/** The platform tag the packaging script writes into `server/target.txt`, e.g. `linux-x64`. */
export function platformTag(platform: string, arch: string): string {
  return `${platform}-${arch}`;
}

export function resolveServer(l: Lookup, probe: Probe): Resolution {
  const configured = (l.configured ?? '').trim();
  if (configured) {
    const p = expandHome(configured, l.home);
    if (!path.isAbsolute(p)) {
      return {
        ok: false,
        message: `infinityMatrix.server.path is "${configured}", which is not an absolute path.`,
        fix: 'Set infinityMatrix.server.path to the absolute path of the infinity-matrix binary, or clear it to use the packaged one.',
      };
    }
    if (!probe.isFile(p)) {
      return {
        ok: false,
        message: `infinityMatrix.server.path points to ${p}, which does not exist.`,
        fix: 'Build the server (cargo build --release) and point infinityMatrix.server.path at target/release/infinity-matrix, or clear the setting.',
      };
    }
    if (!probe.isExecutable(p) && !probe.makeExecutable(p)) {
      return {
        ok: false,
        message: `infinityMatrix.server.path points to ${p}, which is not executable.`,
        fix: `Run chmod +x ${p}.`,
      };
    }
    return { ok: true, path: p, source: 'setting' };
  }
  const bundled = path.join(l.extensionPath, 'server', exeName(l.platform));
  if (probe.isFile(bundled)) {
    const target = probe.readText(path.join(l.extensionPath, 'server', 'target.txt'))?.trim();
    const here = platformTag(l.platform, l.arch);
    if (!target || target === here) {
      if (probe.isExecutable(bundled) || probe.makeExecutable(bundled)) {
        return { ok: true, path: bundled, source: 'bundled' };
      }
    }
  }
  const sep = l.platform === 'win32' ? ';' : ':';
  const dirs = (l.env.PATH ?? l.env.Path ?? '').split(sep).filter(Boolean);
  for (const dir of dirs) {
    const candidate = path.join(expandHome(dir, l.home), exeName(l.platform));
    if (probe.isFile(candidate) && probe.isExecutable(candidate)) {
      return { ok: true, path: candidate, source: 'path' };
    }
  }
  return {
    ok: false,
    message: `The Infinity Matrix server (${SERVER_BINARY}) was not found: this extension carries no server for ${platformTag(l.platform, l.arch)}, it is not on PATH, and infinityMatrix.server.path is not set.`,
    fix: 'Build it with `cargo build --release` in the Infinity Matrix repository, then put target/release on PATH or set infinityMatrix.server.path to the binary.',
  };
}
