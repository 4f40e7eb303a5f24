//! The TypeScript resolver of the benchmark: a TypeScript language service
//! (`ts.createLanguageService` over every .ts file of a project) answering JSON lines on
//! stdin/stdout for backend_typescript.py:
//!   {"op":"candidates"}                    -> use sites in the source folders, with their syntax
//!   {"op":"define","file","line","col"}   -> getDefinitionAtPosition, with each definition's
//!                                             name, full range and header (through the `{`)
//!   {"op":"scope","file","line","col"}    -> the enclosing function (else top-level statement)
//!                                             and the identifiers in it
//! Lines and columns are 0-based; columns count characters (code points), not UTF-16 units.
//! Usage: node ts_resolver.js ROOT SOURCES_JSON (TYPESCRIPT env var: the typescript package dir).
"use strict";

const fs = require("fs");
const path = require("path");
const readline = require("readline");
const ts = require(process.env.TYPESCRIPT || "typescript");

const root = fs.realpathSync(process.argv[2]);
const sources = JSON.parse(process.argv[3] || '["src"]');

function walk(dir, out) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name === "node_modules" || e.name.startsWith(".")) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (/\.(ts|tsx)$/.test(e.name)) out.push(p);
  }
  return out;
}

const files = walk(root, []).sort();
const options = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  allowImportingTsExtensions: true,
  noEmit: true,
  skipLibCheck: true,
  strict: true,
  experimentalDecorators: true,
  jsx: ts.JsxEmit.Preserve,
  lib: ["lib.es2022.d.ts", "lib.dom.d.ts"],
  types: [],
};
const texts = new Map();
function readText(f) {
  if (!texts.has(f)) texts.set(f, fs.existsSync(f) ? fs.readFileSync(f, "utf8") : undefined);
  return texts.get(f);
}
const host = {
  getScriptFileNames: () => files,
  getScriptVersion: () => "1",
  getScriptSnapshot: (f) => {
    const t = readText(f);
    return t === undefined ? undefined : ts.ScriptSnapshot.fromString(t);
  },
  getCurrentDirectory: () => root,
  getCompilationSettings: () => options,
  getDefaultLibFileName: (o) => ts.getDefaultLibFilePath(o),
  fileExists: (f) => fs.existsSync(f),
  readFile: (f) => readText(f),
  readDirectory: ts.sys.readDirectory,
  directoryExists: ts.sys.directoryExists,
  getDirectories: ts.sys.getDirectories,
};
const service = ts.createLanguageService(host, ts.createDocumentRegistry());
const program = service.getProgram();

function sourceFile(f) {
  const sf = program.getSourceFile(f);
  if (!sf) throw new Error(`not in the program: ${f}`);
  return sf;
}

// Positions: (line, character column) <-> offsets.
function lineCol(sf, pos) {
  const lc = sf.getLineAndCharacterOfPosition(pos);
  const lineStart = sf.getPositionOfLineAndCharacter(lc.line, 0);
  return { line: lc.line, col: Array.from(sf.text.slice(lineStart, pos)).length };
}
function offset(sf, line, col) {
  const lineStart = sf.getPositionOfLineAndCharacter(line, 0);
  const lineEnd = sf.getLineEndOfPosition(lineStart);
  const chars = Array.from(sf.text.slice(lineStart, lineEnd)).slice(0, col);
  return lineStart + chars.join("").length;
}
function rel(f) {
  return path.relative(root, f);
}

function isTestFile(f) {
  return /(__tests__|__mocks__|\.test\.ts$|\.spec\.ts$|\.test-d\.ts$|\.d\.ts$)/.test(f);
}

function isTypePosition(node) {
  const p = node.parent;
  if (!p) return false;
  if (ts.isTypeReferenceNode(p) && p.typeName === node) return true;
  if (ts.isExpressionWithTypeArguments(p) && p.expression === node) return true;
  if (ts.isQualifiedName(p)) return isTypePosition(p);
  if (ts.isTypeQueryNode(p)) return true;
  return false;
}

function siteContext(node) {
  const p = node.parent;
  const dotted = ts.isPropertyAccessExpression(p) && p.name === node;
  const callee = dotted ? p : node;
  const called = !!callee.parent && ts.isCallExpression(callee.parent) && callee.parent.expression === callee;
  const isNew = !!p && ts.isNewExpression(p) && p.expression === node;
  return { called, dotted, isNew, typePos: isTypePosition(node) };
}

function isDeclarationName(node) {
  const p = node.parent;
  if (!p) return false;
  if (ts.isPropertyAccessExpression(p) || ts.isQualifiedName(p)) return false;
  return p.name === node || (ts.isLabeledStatement(p) && p.label === node);
}

function inImportExport(node) {
  for (let n = node; n; n = n.parent) {
    if (ts.isImportDeclaration(n) || ts.isExportDeclaration(n) || ts.isImportEqualsDeclaration(n)) return true;
    if (ts.isSourceFile(n)) return false;
  }
  return false;
}

function candidates() {
  const out = [];
  for (const f of files) {
    const r = rel(f);
    if (isTestFile(r) || !sources.some((s) => r === s || r.startsWith(s + "/"))) continue;
    const sf = sourceFile(f);
    const visit = (node) => {
      if (ts.isIdentifier(node) && !isDeclarationName(node) && !inImportExport(node)) {
        const { line, col } = lineCol(sf, node.getStart(sf));
        out.push({ file: r, line, col, name: node.text, ctx: siteContext(node) });
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return out;
}

function nodeAt(sf, pos) {
  let found = sf;
  const visit = (n) => {
    if (n.getStart(sf) <= pos && pos < n.getEnd()) {
      found = n;
      ts.forEachChild(n, visit);
    }
  };
  ts.forEachChild(sf, visit);
  return found;
}

function lineOf(sf, pos) {
  return sf.getLineAndCharacterOfPosition(pos).line;
}

const FUNCTION_LIKE = (n) =>
  ts.isFunctionDeclaration(n) || ts.isMethodDeclaration(n) || ts.isConstructorDeclaration(n) ||
  ts.isGetAccessorDeclaration(n) || ts.isSetAccessorDeclaration(n) ||
  ts.isFunctionExpression(n) || ts.isArrowFunction(n) || ts.isMethodSignature(n);

// The header of the declaration whose name is at `pos`: its first line (decorators and
// modifiers included, the doc comment not), the name line, the line that opens its body.
function header(sf, pos) {
  const name = nodeAt(sf, pos);
  let decl = name.parent || name;
  const nameLine = lineOf(sf, pos);
  let first = lineOf(sf, decl.getStart(sf));
  let end = nameLine;
  let fnLike = false;
  const brace = (n) => {
    const b = n.getChildren(sf).find((c) => c.kind === ts.SyntaxKind.OpenBraceToken);
    return b ? lineOf(sf, b.getStart(sf)) : nameLine;
  };
  if (FUNCTION_LIKE(decl)) {
    fnLike = true;
    end = decl.body ? lineOf(sf, decl.body.getStart(sf)) : lineOf(sf, decl.getEnd() - 1);
  } else if (ts.isClassDeclaration(decl) || ts.isInterfaceDeclaration(decl) || ts.isEnumDeclaration(decl)) {
    end = brace(decl);
  } else if (ts.isModuleDeclaration(decl) && decl.body) {
    end = lineOf(sf, decl.body.getStart(sf));
  } else if (ts.isVariableDeclaration(decl)) {
    const init = decl.initializer;
    if (init && (ts.isArrowFunction(init) || ts.isFunctionExpression(init))) {
      fnLike = true;
      end = ts.isBlock(init.body) ? lineOf(sf, init.body.getStart(sf)) : nameLine;
    }
    if (decl.parent && decl.parent.parent && ts.isVariableStatement(decl.parent.parent)) {
      first = lineOf(sf, decl.parent.parent.getStart(sf));
    }
  } else if ((ts.isPropertyDeclaration(decl) || ts.isPropertyAssignment(decl)) && decl.initializer &&
             (ts.isArrowFunction(decl.initializer) || ts.isFunctionExpression(decl.initializer))) {
    fnLike = true;
  }
  if (end < nameLine) end = nameLine;
  return { firstLine: Math.min(first, nameLine), headerEnd: end, fnLike };
}

function define(file, line, col) {
  const f = path.join(root, file);
  const sf = sourceFile(f);
  const defs = service.getDefinitionAtPosition(f, offset(sf, line, col)) || [];
  return defs.map((d) => {
    const tsf = program.getSourceFile(d.fileName);
    const out = { path: d.fileName, kind: d.kind, name: d.name, containerKind: d.containerKind };
    if (!tsf) return out;
    const nl = lineCol(tsf, d.textSpan.start);
    const span = d.contextSpan || d.textSpan;
    Object.assign(out, {
      nameLine: nl.line, nameCol: nl.col,
      startLine: lineOf(tsf, span.start), endLine: lineOf(tsf, span.start + span.length),
    }, header(tsf, d.textSpan.start));
    return out;
  });
}

function scope(file, line, col) {
  const f = path.join(root, file);
  const sf = sourceFile(f);
  let n = nodeAt(sf, offset(sf, line, col));
  let scopeNode = null;
  for (; n && !ts.isSourceFile(n); n = n.parent) {
    const named = FUNCTION_LIKE(n) && (!ts.isArrowFunction(n) && !ts.isFunctionExpression(n) ||
      (n.parent && (ts.isVariableDeclaration(n.parent) || ts.isPropertyDeclaration(n.parent) ||
                    ts.isPropertyAssignment(n.parent))));
    if (named) { scopeNode = n; break; }
    if (n.parent && ts.isSourceFile(n.parent)) { scopeNode = n; break; }
  }
  if (!scopeNode) return { start: line, end: line, idents: [[line, col]] };
  const idents = [];
  const visit = (x) => {
    if (ts.isIdentifier(x)) {
      const lc = lineCol(sf, x.getStart(sf));
      idents.push([lc.line, lc.col]);
    }
    ts.forEachChild(x, visit);
  };
  visit(scopeNode);
  return { start: lineOf(sf, scopeNode.getStart(sf)), end: lineOf(sf, scopeNode.getEnd()), idents };
}

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on("line", (line) => {
  let reply;
  try {
    const req = JSON.parse(line);
    if (req.op === "candidates") reply = { result: candidates() };
    else if (req.op === "define") reply = { result: define(req.file, req.line, req.col) };
    else if (req.op === "scope") reply = { result: scope(req.file, req.line, req.col) };
    else if (req.op === "ping") reply = { result: { files: files.length } };
    else reply = { error: `unknown op ${req.op}` };
  } catch (e) {
    reply = { error: String(e && e.stack ? e.stack : e) };
  }
  process.stdout.write(JSON.stringify(reply) + "\n");
});
