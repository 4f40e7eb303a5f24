// Bundles the extension into dist/extension.js (CommonJS, node, `vscode` external) and the
// answer panel's webview script into dist/webview.js.
import * as esbuild from 'esbuild';

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

const ctx = await esbuild.context({
  entryPoints: ['src/extension.ts'],
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  outfile: 'dist/extension.js',
  external: ['vscode'],
  sourcemap: !production,
  sourcesContent: false,
  minify: production,
  logLevel: 'info',
});
// The answer panel's webview script: a browser bundle (markdown-it, DOMPurify, highlight.js).
const web = await esbuild.context({
  entryPoints: ['src/webview/main.ts'],
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2022',
  outfile: 'dist/webview.js',
  sourcemap: !production,
  sourcesContent: false,
  minify: production,
  logLevel: 'info',
});
if (watch) {
  await Promise.all([ctx.watch(), web.watch()]);
} else {
  await Promise.all([ctx.rebuild(), web.rebuild()]);
  await Promise.all([ctx.dispose(), web.dispose()]);
}
