"""The TypeScript resolver of the benchmark, Python side: runs ts_resolver.js (a TypeScript
language service over the project) under node, asks it over JSON lines with a timeout
per request, and classifies its answers into case categories.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from pathlib import Path

from common import FileTexts

HERE = Path(__file__).resolve().parent


class TypeScriptBackend(FileTexts):
    lang = "typescript"

    def __init__(self, root: Path, sources: list[str], typescript_dir: Path, log_dir: Path,
                 timeout: float = 60.0):
        self.root = root.resolve()
        self.timeout = timeout
        log_dir.mkdir(parents=True, exist_ok=True)
        self.stderr = open(log_dir / f"ts-resolver-{self.root.name}.log", "wb")
        env = dict(**__import__("os").environ, TYPESCRIPT=str(typescript_dir))
        self.proc = subprocess.Popen(
            ["node", "--max-old-space-size=4096", str(HERE / "ts_resolver.js"), str(self.root),
             json.dumps(sources)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, env=env, text=True,
        )
        self.replies: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.texts: dict[Path, str] = {}
        self._ask({"op": "ping"}, timeout=300)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.replies.put(json.loads(line))
        self.replies.put({"error": "resolver exited"})

    def _ask(self, req: dict, timeout: float | None = None):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        try:
            reply = self.replies.get(timeout=timeout or self.timeout)
        except queue.Empty:
            # The service is single-threaded: a stuck request leaves it unusable.
            self.proc.kill()
            raise TimeoutError(f"ts resolver: {req.get('op')} timed out") from None
        if "error" in reply:
            raise RuntimeError(f"ts resolver: {reply['error'][:2000]}")
        return reply["result"]

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001
            self.proc.kill()
        self.stderr.close()

    def candidates(self) -> list[dict]:
        return self._ask({"op": "candidates"}, timeout=600)

    def resolve(self, file: str, line: int, col: int) -> list[dict]:
        out = []
        for d in self._ask({"op": "define", "file": file, "line": line, "col": col}):
            if "nameLine" not in d:
                continue
            d["path"] = Path(d["path"]).resolve()
            out.append(d)
        return out

    def normalize(self, site: dict, defs: list[dict]) -> list[dict]:
        """TypeScript answers `new C(...)` with both the class and its (or a base class's)
        constructor: the class is the definition the site refers to."""
        if site["ctx"]["isNew"]:
            classes = [d for d in defs if d["kind"] == "class"]
            if len(classes) == 1 and all(d["kind"] in ("class", "constructor") for d in defs):
                return classes
        return defs

    def classify(self, site: dict, d: dict) -> str | None:
        ctx, kind = site["ctx"], d["kind"]
        if kind in ("class", "constructor"):
            if ctx["isNew"]:
                return "constructor"
            return "type" if ctx["typePos"] and kind == "class" else None
        if kind in ("interface", "type", "enum"):
            return "type" if ctx["typePos"] else None
        if kind == "function":
            return "call" if ctx["called"] else None
        if kind == "method":
            return "method" if ctx["dotted"] and ctx["called"] else None
        if kind in ("const", "let", "var"):
            if d.get("fnLike"):
                return "call" if ctx["called"] else None
            return "constant" if not ctx["called"] and not ctx["typePos"] else None
        if kind in ("property", "getter", "setter"):
            plain = ctx["dotted"] and not ctx["called"] and not d.get("fnLike")
            return "constant" if plain else None
        if kind == "enum member":
            return "constant"
        return None

    def header(self, d: dict) -> dict:
        return {"firstLine": d["firstLine"], "headerEnd": d["headerEnd"]}

    def scope(self, file: str, line: int, col: int) -> tuple[int, int, list[tuple[int, int]]]:
        r = self._ask({"op": "scope", "file": file, "line": line, "col": col})
        return r["start"], r["end"], [tuple(x) for x in r["idents"]]
