// Runs before `vsce package` (npm `prepackage`): copies the release server binary into
// server/ so the .vsix carries it, and records the platform it was built for.
//
// Looks in $INFINITY_MATRIX_SERVER_BINARY (an explicit file), else $CARGO_TARGET_DIR/release,
// else <repo>/target/release. Fails with the command to run when the binary is missing.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const extDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const repo = path.resolve(extDir, '../..');
const exe = process.platform === 'win32' ? 'infinity-matrix.exe' : 'infinity-matrix';

const candidates = [];
if (process.env.INFINITY_MATRIX_SERVER_BINARY) candidates.push(path.resolve(process.env.INFINITY_MATRIX_SERVER_BINARY));
if (process.env.CARGO_TARGET_DIR) candidates.push(path.resolve(repo, process.env.CARGO_TARGET_DIR, 'release', exe));
candidates.push(path.join(repo, 'target', 'release', exe));

const found = candidates.find((p) => fs.existsSync(p) && fs.statSync(p).isFile());
if (!found) {
  console.error(
    `prepackage: the release server binary was not found (looked in: ${candidates.join(', ')}).\n` +
      'Build it first:  cargo build --release -p infinity-matrix --bin infinity-matrix\n' +
      '(or set INFINITY_MATRIX_SERVER_BINARY to the binary to package).',
  );
  process.exit(1);
}

// A binary older than the server's sources is probably stale: say so, but package it.
function newestMtime(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (entry.name.endsWith('.rs')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}
const serverSrc = path.join(repo, 'server', 'src');
if (fs.existsSync(serverSrc) && newestMtime(serverSrc) > fs.statSync(found).mtimeMs) {
  console.warn(`prepackage: warning: ${found} is older than server/src; rebuild with cargo build --release for an up-to-date server.`);
}

const outDir = path.join(extDir, 'server');
fs.rmSync(outDir, { recursive: true, force: true });
fs.mkdirSync(outDir, { recursive: true });
const dest = path.join(outDir, exe);
fs.copyFileSync(found, dest);
fs.chmodSync(dest, 0o755);
const tag = `${process.platform}-${process.arch}`;
fs.writeFileSync(path.join(outDir, 'target.txt'), `${tag}\n`);
const mb = (fs.statSync(dest).size / 1024 / 1024).toFixed(1);
console.log(`prepackage: packaged server ${path.relative(repo, found)} (${mb} MiB) for ${tag}`);
