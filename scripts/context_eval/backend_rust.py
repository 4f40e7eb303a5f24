"""The Rust resolver of the benchmark: rust-analyzer as an LSP server over stdio on a
cached copy of the crate. Candidate use sites come from its semantic tokens (typed,
without the `declaration`/`library` modifiers, outside `use`/`mod` items and doc
comments), definitions from `textDocument/definition` (location links: the full range and
the name), enclosing functions from `textDocument/documentSymbol`. Headers are read from
the definition's file with a small lexer (through the `{` or `;` that ends the signature).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from common import log, utf16_to_char, char_to_utf16
from lsp_client import LspClient, path_to_uri, uri_to_path

_IDENT = re.compile(r"(?:r#)?[A-Za-z_][A-Za-z0-9_]*")


def lex(text: str) -> list[tuple[str, str, int, int]]:
    """Rust tokens as (kind, text, line, char column): kind is ident, punct or lit;
    comments and whitespace are dropped. Good enough for signatures and `use` items."""
    toks = []
    i, n, line, lstart = 0, len(text), 0, 0

    def advance_to(j):
        nonlocal i, line, lstart
        while True:
            k = text.find("\n", i, j)
            if k < 0:
                break
            line += 1
            lstart = k + 1
            i = k + 1
        i = j

    while i < n:
        c = text[i]
        if c == "\n" or c.isspace():
            advance_to(i + 1)
        elif text.startswith("//", i):
            j = text.find("\n", i)
            advance_to(n if j < 0 else j)
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            advance_to(j)
        else:
            m = re.compile(r'b?r(#*)"').match(text, i)
            if m:
                close = '"' + m.group(1)
                j = text.find(close, m.end())
                j = n if j < 0 else j + len(close)
                toks.append(("lit", "", line, i - lstart))
                advance_to(j)
                continue
            if c == '"' or (c == "b" and text.startswith('b"', i)):
                j = i + (2 if c == "b" else 1)
                while j < n and text[j] != '"':
                    j += 2 if text[j] == "\\" else 1
                toks.append(("lit", "", line, i - lstart))
                advance_to(min(j + 1, n))
                continue
            if c == "'" or (c == "b" and text.startswith("b'", i)):
                s = i + (2 if c == "b" else 1)
                m2 = re.compile(r"(\\(x..|u\{[0-9a-fA-F_]*\}|.)|[^\\'\n])'").match(text, s)
                if m2:
                    toks.append(("lit", "", line, i - lstart))
                    advance_to(m2.end())
                    continue
                # a lifetime or label
                m3 = _IDENT.match(text, s)
                j = m3.end() if m3 else s
                toks.append(("lifetime", text[i:j], line, i - lstart))
                advance_to(j)
                continue
            m = _IDENT.match(text, i)
            if m:
                toks.append(("ident", m.group(0), line, i - lstart))
                advance_to(m.end())
                continue
            if c.isdigit():
                m = re.compile(r"[0-9][0-9A-Za-z_.]*").match(text, i)
                toks.append(("lit", "", line, i - lstart))
                advance_to(m.end())
                continue
            if text.startswith("::", i):
                toks.append(("punct", "::", line, i - lstart))
                advance_to(i + 2)
                continue
            toks.append(("punct", c, line, i - lstart))
            advance_to(i + 1)
    return toks


_ITEM_KEYWORDS = {"fn", "struct", "enum", "trait", "union", "type", "impl", "mod"}


def header_of(text: str, name_line: int, name_col: int) -> tuple[int, int]:
    """(first line, header's last line) of the definition whose name is at the position:
    through the `{` or `;` that ends a fn/struct/enum/trait/type signature; the name line
    alone for fields, variants, consts and statics."""
    toks = lex(text)
    idx = next((k for k, t in enumerate(toks) if t[2] == name_line and t[3] == name_col), None)
    if idx is None:
        return name_line, name_line
    first = name_line
    k = idx - 1
    # Walk back over the item's keywords (`pub(crate) const unsafe fn`, ...).
    while k >= 0 and toks[k][1] in (
        "fn", "struct", "enum", "trait", "union", "type", "pub", "const", "async", "unsafe",
        "extern", "static", "default", "crate", "super", "in", "self", "(", ")",
    ) and toks[k][0] in ("ident", "punct"):
        first = toks[k][2]
        k -= 1
    if idx == 0 or toks[idx - 1][1] not in _ITEM_KEYWORDS:
        return first, name_line
    depth = 0
    for kind, t, line, _ in toks[idx + 1:]:
        if kind != "punct":
            continue
        if t in "([":
            depth += 1
        elif t in ")]":
            depth -= 1
        elif depth == 0 and t in ("{", ";"):
            return first, line
    return first, name_line


def use_item_positions(text: str) -> set[tuple[int, int]]:
    """Positions of identifiers inside `use ...;`, `mod x;` and `extern crate` items."""
    toks = lex(text)
    out: set[tuple[int, int]] = set()
    inside = False
    for k, (kind, t, line, col) in enumerate(toks):
        if kind == "ident" and t in ("use", "extern") and not inside:
            prev = toks[k - 1][1] if k else ";"
            if prev in (";", "{", "}", "]", "pub", ")") or prev.startswith("#"):
                inside = True
        if kind == "ident" and t == "mod" and k + 2 < len(toks) and toks[k + 2][1] == ";":
            out.add((toks[k + 1][2], toks[k + 1][3]))
        if inside:
            out.add((line, col))
            if kind == "punct" and t == ";":
                inside = False
    return out


_SITE_TYPES = {
    "function", "method", "struct", "enum", "enumMember", "interface", "typeAlias", "const",
    "static", "property", "union",
}
_SKIP_MODIFIERS = {"declaration", "library", "defaultLibrary", "injected", "documentation",
                   "intraDocLink", "attribute", "macro"}
_SYMBOL_FUNCTION_KINDS = {6, 9, 12}  # method, constructor, function


class RustBackend:
    lang = "rust"

    def __init__(self, root: Path, sources: list[str], ra_bin: str, log_dir: Path):
        self.root = root.resolve()
        self.sources = sources
        self.texts: dict[Path, str] = {}
        self.lines: dict[Path, list[str]] = {}
        self.tokens: dict[Path, list] = {}
        self.symbols: dict[Path, list] = {}
        self.opened: set[Path] = set()
        log_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        self.client = LspClient([ra_bin], self.root,
                                log_dir / f"rust-analyzer-{self.root.name}.log")
        res = self.client.request("initialize", {
            "processId": None,
            "rootUri": path_to_uri(self.root),
            "workspaceFolders": [{"uri": path_to_uri(self.root), "name": self.root.name}],
            "capabilities": {
                "textDocument": {
                    "definition": {"linkSupport": True},
                    "semanticTokens": {"requests": {"full": True}, "tokenTypes": [],
                                       "tokenModifiers": [], "formats": ["relative"]},
                    "documentSymbol": {"hierarchicalDocumentSymbolSupport": True},
                },
                "experimental": {"serverStatusNotification": True},
            },
            # Build scripts and proc macros would compile dependencies; the sites whose
            # resolution needs them are few, and a case needs one clear answer anyway.
            "initializationOptions": {
                "cargo": {"buildScripts": {"enable": False}},
                "procMacro": {"enable": False},
                "checkOnSave": False,
                "cachePriming": {"enable": True},
            },
        }, timeout=120)
        self.legend = res["capabilities"]["semanticTokensProvider"]["legend"]
        self.client.notify("initialized", {})
        status = self.client.wait_notification(
            lambda m: m.get("method") == "experimental/serverStatus"
            and m["params"].get("quiescent"), timeout=900)
        if status is None:
            raise RuntimeError("rust-analyzer did not finish loading the crate in 15 minutes")
        if status["params"].get("health") not in ("ok", "warning"):
            log(f"rust-analyzer health: {status['params']}")
        log(f"rust-analyzer ready on {self.root.name} in {time.monotonic() - t0:.1f}s")

    def close(self) -> None:
        self.client.close()

    # -- files ------------------------------------------------------------------------

    def text(self, path: Path) -> str:
        path = path.resolve()
        if path not in self.texts:
            self.texts[path] = path.read_text(encoding="utf-8", errors="replace")
            self.lines[path] = self.texts[path].split("\n")
        return self.texts[path]

    def _open(self, path: Path) -> str:
        path = path.resolve()
        if path not in self.opened:
            self.client.notify("textDocument/didOpen", {"textDocument": {
                "uri": path_to_uri(path), "languageId": "rust", "version": 1,
                "text": self.text(path)}})
            self.opened.add(path)
        return path_to_uri(path)

    def source_files(self) -> list[Path]:
        out = []
        for s in self.sources:
            out.extend(sorted((self.root / s).rglob("*.rs")))
        return out

    def _semantic_tokens(self, path: Path) -> list[tuple[int, int, str, str, set]]:
        """(line, char col, text, type, modifiers) of every semantic token of the file."""
        path = path.resolve()
        if path in self.tokens:
            return self.tokens[path]
        uri = self._open(path)
        res = self.client.request("textDocument/semanticTokens/full",
                                  {"textDocument": {"uri": uri}}, timeout=180)
        data = res["data"] if res else []
        lines = self.lines[path]
        types, mods = self.legend["tokenTypes"], self.legend["tokenModifiers"]
        out = []
        line = col = 0
        for i in range(0, len(data), 5):
            dl, dc, length, ty, mbits = data[i:i + 5]
            if dl:
                line, col = line + dl, dc
            else:
                col += dc
            lt = lines[line] if line < len(lines) else ""
            c0, c1 = utf16_to_char(lt, col), utf16_to_char(lt, col + length)
            out.append((line, c0, lt[c0:c1], types[ty] if ty < len(types) else "?",
                        {mods[b] for b in range(len(mods)) if mbits >> b & 1}))
        self.tokens[path] = out
        return out

    # -- the resolver interface ------------------------------------------------------

    def candidates(self) -> list[dict]:
        sites = []
        for f in self.source_files():
            text = self.text(f)
            in_use = use_item_positions(text)
            toks = lex(text)
            by_pos = {(t[2], t[3]): k for k, t in enumerate(toks)}
            for line, col, name, ty, mods in self._semantic_tokens(f):
                if ty not in _SITE_TYPES or mods & _SKIP_MODIFIERS or (line, col) in in_use:
                    continue
                if not _IDENT.fullmatch(name):
                    continue
                k = by_pos.get((line, col))
                if k is None:
                    continue  # inside a macro body or a string: not a plain site
                prev = toks[k - 1][1] if k else ""
                prev2 = toks[k - 2][1] if k > 1 else ""
                nxt = toks[k + 1][1] if k + 1 < len(toks) else ""
                sites.append({
                    "file": str(f.relative_to(self.root)), "line": line, "col": col,
                    "name": name,
                    "ctx": {"tokenType": ty, "prev": prev, "prev2": prev2, "next": nxt,
                            "called": nxt == "(" or (nxt == "::" and k + 2 < len(toks)
                                                     and toks[k + 2][1] == "<"),
                            "dotted": prev == "."},
                })
        return sites

    def resolve(self, file: str, line: int, col: int) -> list[dict]:
        path = (self.root / file).resolve()
        uri = self._open(path)
        lt = self.lines[path][line]
        res = self.client.request("textDocument/definition", {
            "textDocument": {"uri": uri},
            "position": {"line": line, "character": char_to_utf16(lt, col)}}, timeout=30)
        if not res:
            return []
        if isinstance(res, dict):
            res = [res]
        out = []
        for link in res:
            if "targetUri" in link:
                target = uri_to_path(link["targetUri"])
                full, sel = link["targetRange"], link["targetSelectionRange"]
            else:
                target = uri_to_path(link["uri"])
                full = sel = link["range"]
            target = target.resolve()
            name_line = sel["start"]["line"]
            try:
                self.text(target)
                tl = self.lines[target][name_line]
            except (OSError, IndexError):
                tl = ""
            name_col = utf16_to_char(tl, sel["start"]["character"])
            out.append({
                "path": target, "nameLine": name_line, "nameCol": name_col,
                "name": tl[name_col:utf16_to_char(tl, sel["end"]["character"])],
                "startLine": full["start"]["line"], "endLine": full["end"]["line"],
            })
        return out

    def classify(self, site: dict, d: dict) -> str | None:
        ctx = site["ctx"]
        ty = ctx["tokenType"]
        if ty == "method":
            return "method" if ctx["dotted"] else None
        if ty == "function":
            if not ctx["called"]:
                return None
            if ctx["prev"] == "::" and re.fullmatch(r"new(_\w+)?|with_\w+|default", site["name"]):
                return "constructor"
            return "call"
        if ty in ("struct", "enumMember", "union"):
            # A literal `Name { .. }` / `Path::Name(..)`: `Name {` also ends a return type
            # (`-> Name {`), so a brace counts only after what starts an expression.
            if ctx["next"] == "(" and ctx["prev"] not in ("fn", "impl", "for", "dyn"):
                return "constructor"
            after_arrow = ctx["prev"] == ">" and ctx["prev2"] == "="  # `=> Name {`
            if ctx["next"] == "{" and (after_arrow or ctx["prev"] in (
                    "=", "(", ",", "return", "{", ";", "[", "::", "|", "break")) \
                    and not (ctx["prev"] == "::" and ty == "struct"):
                return "constructor"
            return "type" if ty != "enumMember" else "constant"
        if ty in ("enum", "interface", "typeAlias"):
            return "type"
        if ty in ("const", "static"):
            return "constant"
        if ty == "property":
            return "constant" if ctx["dotted"] else None
        return None

    def header(self, d: dict) -> dict:
        text = self.text(d["path"])
        first, end = header_of(text, d["nameLine"], d["nameCol"])
        return {"firstLine": first, "headerEnd": end}

    def _symbols(self, path: Path) -> list:
        path = path.resolve()
        if path not in self.symbols:
            uri = self._open(path)
            self.symbols[path] = self.client.request(
                "textDocument/documentSymbol", {"textDocument": {"uri": uri}}, timeout=60) or []
        return self.symbols[path]

    def scope(self, file: str, line: int, col: int) -> tuple[int, int, list[tuple[int, int]]]:
        """The enclosing function (else the enclosing top-level item, else the line) and
        the identifier positions in it."""
        path = (self.root / file).resolve()
        best_fn = None
        top = None

        def contains(r):
            return r["start"]["line"] <= line <= r["end"]["line"]

        def walk(syms, depth):
            nonlocal best_fn, top
            for s in syms:
                if contains(s["range"]):
                    if depth == 0 and top is None:
                        top = s["range"]
                    if s.get("kind") in _SYMBOL_FUNCTION_KINDS:
                        best_fn = s["range"]
                    walk(s.get("children") or [], depth + 1)

        walk(self._symbols(path), 0)
        r = best_fn or top
        a, b = (r["start"]["line"], r["end"]["line"]) if r else (line, line)
        idents = [(ln, c) for (ln, c, name, ty, mods) in self._semantic_tokens(path)
                  if a <= ln <= b and _IDENT.fullmatch(name) and ty not in (
                      "keyword", "builtinType", "selfKeyword", "selfTypeKeyword", "lifetime",
                      "comment", "string", "number", "boolean", "formatSpecifier",
                      "attribute", "builtinAttribute", "label")
                  and "injected" not in mods and "documentation" not in mods]
        return a, b, idents
