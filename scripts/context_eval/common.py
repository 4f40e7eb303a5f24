"""Shared helpers of the context-quality benchmark: the cache layout, the pinned project
list, logging, subprocess helpers, deterministic sampling and line/column conversions.

Everything downloaded or built lives under the cache directory
(`$INFINITY_MATRIX_CACHE/context-eval`, default `~/.cache/infinity-matrix/context-eval`),
never in the clone.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
LANGS = ("python", "rust", "typescript", "java")
CATEGORIES = ("call", "method", "constructor", "type", "constant")

# Bump when the way cases are picked or their ground truth is computed changes: the case
# set cache is keyed by it and by the pinned project versions.
CASES_FORMAT = 1


class FileTexts:
    """A backend's file texts, read once each (`self.texts` is set up by the backend)."""

    texts: dict[Path, str]

    def text(self, path: Path) -> str:
        path = path.resolve()
        if path not in self.texts:
            self.texts[path] = path.read_text(encoding="utf-8", errors="replace")
        return self.texts[path]


def cache_dir() -> Path:
    base = os.environ.get("INFINITY_MATRIX_CACHE") or str(
        Path.home() / ".cache" / "infinity-matrix")
    d = Path(base) / "context-eval"
    d.mkdir(parents=True, exist_ok=True)
    return d


def load_projects() -> dict:
    with open(HERE / "projects.json", encoding="utf-8") as f:
        return json.load(f)


def project_slug(proj: dict) -> str:
    return f"{proj['name'].replace('@', '').replace('/', '__')}-{proj['version']}"


def project_dir(lang: str, proj: dict) -> Path:
    return cache_dir() / "projects" / lang / project_slug(proj)


def cases_key(lang: str, projects: list[dict]) -> str:
    blob = json.dumps(
        {"format": CASES_FORMAT, "lang": lang, "projects": projects}, sort_keys=True
    ).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def cases_path(lang: str, projects: list[dict]) -> Path:
    return cache_dir() / "cases" / f"{lang}-{cases_key(lang, projects)}.json"


_T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[context-eval {time.monotonic() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], cwd: Path | None = None, timeout: float = 1800, env: dict | None = None,
        quiet: bool = True) -> subprocess.CompletedProcess:
    """Runs a command; raises with its output on failure."""
    log("$ " + " ".join(str(c) for c in cmd) + (f"   (in {cwd})" if cwd else ""))
    p = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, timeout=timeout, env=env, text=True,
        stdout=subprocess.PIPE if quiet else None, stderr=subprocess.STDOUT if quiet else None,
    )
    if p.returncode != 0:
        out = (p.stdout or "")[-4000:]
        raise RuntimeError(f"command failed ({p.returncode}): {' '.join(map(str, cmd))}\n{out}")
    return p


class Rng:
    """A small deterministic PRNG (splitmix64), the same on every machine and Python."""

    def __init__(self, seed: str):
        self.state = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "little")

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return z ^ (z >> 31)

    def shuffle(self, xs: list) -> list:
        xs = list(xs)
        for i in range(len(xs) - 1, 0, -1):
            j = self.next() % (i + 1)
            xs[i], xs[j] = xs[j], xs[i]
        return xs


def read_lines(path: Path) -> list[str]:
    """A file's lines without their line breaks (LF, CRLF or CR), as LSP counts lines."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def utf16_to_char(line: str, col16: int) -> int:
    """A UTF-16 column in `line` as a character index."""
    units = 0
    for i, ch in enumerate(line):
        if units >= col16:
            return i
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(line)


def char_to_utf16(line: str, col: int) -> int:
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in line[:col])


def utf8_to_char(line: str, col8: int) -> int:
    return len(line.encode("utf-8")[:col8].decode("utf-8", errors="ignore"))


def is_under(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False
