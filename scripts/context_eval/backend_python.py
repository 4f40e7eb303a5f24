"""The Python resolver of the benchmark: jedi (`Script.goto(follow_imports=True)`) over a
project root, parso for the syntax around a site (called? after a dot? inside an import?),
and tokenize/ast for a definition's header (the `def`/`class` line through the `:` that
opens the body, decorators as its first line). Every jedi call runs under a timeout.
"""

from __future__ import annotations

import ast
import io
import signal
import tokenize
from contextlib import contextmanager
from pathlib import Path

import jedi
import parso

from common import FileTexts, cache_dir

SKIP_DIRS = {"tests", "test", "docs", "examples", "benchmarks", "scripts"}


@contextmanager
def time_limit(seconds: float):
    def handler(signum, frame):
        raise TimeoutError(f"jedi call over {seconds}s")

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _in_annotation(leaf) -> bool:
    """Whether the name is inside a parameter, return or variable annotation."""
    node = leaf
    while node.parent is not None and node.type not in ("funcdef", "classdef", "suite"):
        p = node.parent
        if p.type == "param" and getattr(p, "annotation", None) is node:
            return True
        if p.type == "funcdef" and p.annotation is node:
            return True
        if p.type == "annassign" and len(p.children) > 1 and p.children[1] is node:
            return True
        node = p
    return False


def _in_import(leaf) -> bool:
    node = leaf.parent
    while node is not None:
        if node.type in ("import_from", "import_name"):
            return True
        if node.type in ("funcdef", "classdef", "file_input", "suite"):
            return False
        node = node.parent
    return False


class PythonBackend(FileTexts):
    lang = "python"

    def __init__(self, root: Path, sources: list[str], timeout: float = 15.0):
        self.root = root.resolve()
        self.sources = sources
        self.timeout = timeout
        jedi.settings.cache_directory = str(cache_dir() / "jedi")
        extra = [str(self.root / "src")] if (self.root / "src").is_dir() else []
        self.project = jedi.Project(self.root, added_sys_path=extra)
        self.scripts: dict[Path, jedi.Script] = {}
        self.trees: dict[Path, object] = {}
        self.texts: dict[Path, str] = {}

    def close(self) -> None:
        pass

    def _script(self, path: Path) -> jedi.Script:
        path = path.resolve()
        if path not in self.scripts:
            self.scripts[path] = jedi.Script(path=str(path), project=self.project)
        return self.scripts[path]

    def _tree(self, path: Path):
        path = path.resolve()
        if path not in self.trees:
            self.trees[path] = parso.parse(self.text(path))
        return self.trees[path]

    def source_files(self) -> list[Path]:
        out = []
        for s in self.sources:
            for f in sorted((self.root / s).rglob("*.py")):
                if not SKIP_DIRS & set(f.relative_to(self.root).parts[:-1]):
                    out.append(f)
        return out

    def candidates(self) -> list[dict]:
        sites = []
        for f in self.source_files():
            tree = self._tree(f)
            leaf = tree.get_first_leaf()
            while leaf is not None:
                if leaf.type == "name" and not leaf.is_definition() and not _in_import(leaf):
                    prev, nxt = leaf.get_previous_leaf(), leaf.get_next_leaf()
                    sites.append({
                        "file": str(f.relative_to(self.root)),
                        "line": leaf.start_pos[0] - 1, "col": leaf.start_pos[1],
                        "name": leaf.value,
                        "ctx": {"called": nxt is not None and nxt.value == "(",
                                "dotted": prev is not None and prev.value == ".",
                                "annotation": _in_annotation(leaf)},
                    })
                leaf = leaf.get_next_leaf()
        return sites

    def _goto(self, path: Path, line: int, col: int):
        with time_limit(self.timeout):
            return self._script(path).goto(line + 1, col, follow_imports=True)

    def resolve(self, file: str, line: int, col: int) -> list[dict]:
        path = (self.root / file).resolve()
        out = []
        for d in self._goto(path, line, col):
            if d.module_path is None or d.line is None:
                continue
            start, end = d.get_definition_start_position(), d.get_definition_end_position()
            parent = d.parent()
            out.append({
                "path": Path(d.module_path).resolve(), "nameLine": d.line - 1,
                "nameCol": d.column, "name": d.name, "kind": d.type,
                "parentKind": parent.type if parent is not None else None,
                "startLine": (start[0] - 1) if start else d.line - 1,
                "endLine": (end[0] - 1) if end else d.line - 1,
            })
        return out

    def classify(self, site: dict, d: dict) -> str | None:
        ctx, kind = site["ctx"], d["kind"]
        if kind == "class":
            return "constructor" if ctx["called"] else "type"
        if kind == "function":
            if d["parentKind"] == "class":
                return "method" if ctx["dotted"] and ctx["called"] else None
            return "call" if ctx["called"] else None
        if kind == "property":
            return "constant" if ctx["dotted"] else None
        if kind in ("statement", "instance"):
            if ctx["called"]:
                return None
            # a type alias (`X = Union[...]`) used in an annotation is a type reference
            return "type" if ctx.get("annotation") else "constant"
        return None

    def header(self, d: dict) -> dict:
        """First line (decorators included) and the header's last line: for a def or class,
        the line of the `:` that opens its body; the name line otherwise."""
        text = self.text(d["path"])
        lines = text.split("\n")
        nl, nc = d["nameLine"], d["nameCol"]
        before = lines[nl][:nc].strip() if nl < len(lines) else ""
        if before not in ("def", "class", "async def"):
            return {"firstLine": nl, "headerEnd": nl}
        first = nl
        try:
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                        and node.lineno == nl + 1 and node.decorator_list:
                    # a decorator's expression starts after its `@`, on the same line
                    first = min(x.lineno for x in node.decorator_list) - 1
        except SyntaxError:
            pass
        depth, end = 0, nl
        try:
            toks = tokenize.generate_tokens(io.StringIO(text).readline)
            for tok in toks:
                if tok.start < (nl + 1, nc):
                    continue
                if tok.type == tokenize.OP:
                    if tok.string in "([{":
                        depth += 1
                    elif tok.string in ")]}":
                        depth -= 1
                    elif tok.string == ":" and depth == 0:
                        end = tok.start[0] - 1
                        break
        except (tokenize.TokenError, IndentationError, SyntaxError):
            pass
        return {"firstLine": first, "headerEnd": end}

    def scope(self, file: str, line: int, col: int) -> tuple[int, int, list[tuple[int, int]]]:
        """The enclosing function (else the top-level statement) and its name positions."""
        path = (self.root / file).resolve()
        tree = self._tree(path)
        leaf = tree.get_leaf_for_position((line + 1, col))
        node = leaf
        scope = None
        while node is not None and node.parent is not None:
            if node.type in ("funcdef", "async_funcdef"):
                scope = node
                break
            if node.parent.type == "file_input":
                scope = node
                break
            node = node.parent
        if scope is None:
            return line, line, [(line, col)]
        a, b = scope.start_pos[0] - 1, scope.end_pos[0] - 1
        if scope.end_pos[1] == 0:
            b -= 1
        names = []
        leaf = scope.get_first_leaf()
        last = scope.get_last_leaf()
        while leaf is not None:
            if leaf.type == "name":
                names.append((leaf.start_pos[0] - 1, leaf.start_pos[1]))
            if leaf is last:
                break
            leaf = leaf.get_next_leaf()
        return a, b, names
