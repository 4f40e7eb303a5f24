"""The Java resolver of the benchmark, Python side: runs JavaResolver.java (javac's own
attribution of the whole project, through the JDK's compiler API) once, and answers
candidates, definitions and scopes from its output; classifies answers into case categories.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from common import FileTexts

HERE = Path(__file__).resolve().parent


class JavaBackend(FileTexts):
    lang = "java"

    def __init__(self, root: Path, sources: list[str], log_dir: Path, timeout: float = 900.0):
        self.root = root.resolve()
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / f"java-resolver-{self.root.name}.log", "wb") as err:
            out = subprocess.run(
                ["java", "-Xmx4g", str(HERE / "JavaResolver.java"), str(self.root), *sources],
                stdout=subprocess.PIPE, stderr=err, timeout=timeout, check=True,
            ).stdout.decode("utf-8", errors="replace")
        self.sites = [json.loads(line) for line in out.splitlines() if line.strip()]
        self.by_place = {(s["file"], s["line"], s["col"]): s for s in self.sites}
        self.texts: dict[Path, str] = {}

    def close(self) -> None:
        pass

    def candidates(self) -> list[dict]:
        return [s for s in self.sites if s["def"] is not None]

    def resolve(self, file: str, line: int, col: int) -> list[dict]:
        site = self.by_place.get((file, line, col))
        if site is None or site["def"] is None:
            return []
        d = dict(site["def"])
        d["path"] = Path(d["path"]).resolve()
        return [d]

    def classify(self, site: dict, d: dict) -> str | None:
        ctx, kind = site["ctx"], d["kind"]
        if kind in ("class", "record", "enum", "interface", "annotation"):
            if ctx["isNew"]:
                return "constructor" if kind in ("class", "record") else None
            return "type" if ctx["typePos"] else None
        if kind == "method":
            if not ctx["called"]:
                return None
            return "method" if ctx["dotted"] else "call"
        if kind in ("field", "enum constant"):
            return "constant" if not ctx["called"] else None
        return None

    def header(self, d: dict) -> dict:
        return {"firstLine": d["firstLine"], "headerEnd": d["headerEnd"]}

    def scope(self, file: str, line: int, col: int) -> tuple[int, int, list[tuple[int, int]]]:
        site = self.by_place[(file, line, col)]
        a, b = site["scope"]
        idents = [(s["line"], s["col"]) for s in self.sites
                  if s["file"] == file and a <= s["line"] <= b]
        return a, b, idents
