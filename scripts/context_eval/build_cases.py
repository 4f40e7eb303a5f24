"""Builds the benchmark's case set for one language: fetches the pinned projects, asks the
language's own resolver (backend_python / backend_rust / backend_typescript / backend_java) about use
sites picked in a seeded order, and keeps those whose answer is a single definition in
another file of the same project, with a category per case (call, method, constructor,
type, constant), the definition's header lines, and the set of definitions the code
around the site refers to (for precision). The set is cached as JSON, keyed by the
project versions (common.cases_path).
"""

from __future__ import annotations

import builtins
import json
import math
import time
from collections import Counter
from pathlib import Path

from common import (CATEGORIES, Rng, cache_dir, cases_key, cases_path, is_under, load_projects,
                    log)
from fetch import ensure_rust_analyzer, ensure_typescript_package, fetch_all

SEED = "context-eval-1"
PER_PROJECT = 25          # cases per project (3 projects: 75 per language)
PER_CATEGORY = 5          # first pass: at most this many per category and project
MAX_ATTEMPTS = 20000      # resolver calls spent looking for cases in one project
MAX_SECONDS = 900         # and the time
MAX_SCOPE_IDENTS = 400    # identifiers resolved per case for the precision set
SHORT = {"python": "py", "rust": "rs", "typescript": "ts", "java": "java"}
PY_SKIP = {"self", "cls"} | set(dir(builtins))
RUST_SKIP = {"Self", "self", "Some", "None", "Ok", "Err"}


def make_backend(lang: str, root: Path, sources: list[str]):
    logs = cache_dir() / "logs"
    if lang == "python":
        from backend_python import PythonBackend
        return PythonBackend(root, sources)
    if lang == "typescript":
        from backend_typescript import TypeScriptBackend
        return TypeScriptBackend(root, sources, ensure_typescript_package(), logs)
    if lang == "java":
        from backend_java import JavaBackend
        return JavaBackend(root, sources, logs)
    if lang == "rust":
        from backend_rust import RustBackend
        return RustBackend(root, sources, ensure_rust_analyzer(), logs)
    raise ValueError(lang)


def _skip_name(lang: str, name: str) -> bool:
    return (lang == "python" and name in PY_SKIP) or (lang == "rust" and name in RUST_SKIP)


def _unique(defs: list[dict]) -> list[dict]:
    seen, out = set(), []
    for d in defs:
        k = (str(d["path"]), d["nameLine"], d.get("nameCol"))
        if k not in seen:
            seen.add(k)
            out.append(d)
    return out


def select_project(lang: str, proj: dict, root: Path, backend) -> tuple[list[dict], dict]:
    t0 = time.monotonic()
    root = root.resolve()
    sites = sorted(backend.candidates(), key=lambda s: (s["file"], s["line"], s["col"]))
    sites = [s for s in sites if not _skip_name(lang, s["name"])]
    files = {s["file"] for s in sites}
    file_cap = max(5, math.ceil(2 * PER_PROJECT / max(1, len(files))))
    order = Rng(f"{SEED}:{lang}:{proj['name']}").shuffle(sites)
    log(f"{lang}/{proj['name']}: {len(sites)} candidate sites in {len(files)} files")

    accepted: list[tuple] = []
    overflow: list[tuple] = []
    per_cat: Counter = Counter()
    per_file: Counter = Counter()
    seen_defs: set = set()
    stats = Counter()
    for site in order:
        if len(accepted) >= PER_PROJECT or stats["attempts"] >= MAX_ATTEMPTS \
                or time.monotonic() - t0 > MAX_SECONDS:
            break
        if per_file[site["file"]] >= file_cap:
            continue
        stats["attempts"] += 1
        try:
            defs = _unique(backend.resolve(site["file"], site["line"], site["col"]))
            if hasattr(backend, "normalize"):
                defs = backend.normalize(site, defs)
        except Exception as e:  # noqa: BLE001 - a failing site is skipped, not fatal
            stats["resolver errors"] += 1
            log(f"  resolve failed at {site['file']}:{site['line'] + 1}: {str(e)[:200]}")
            continue
        if len(defs) != 1:
            stats["none or several"] += 1
            continue
        d = defs[0]
        if d.get("name") and d["name"] != site["name"]:
            # an alias, or code a derive or macro generated: not a definition in the source
            stats["other name"] += 1
            continue
        if not is_under(d["path"], root):
            stats["outside the project"] += 1
            continue
        if d["path"] == (root / site["file"]).resolve():
            stats["same file"] += 1
            continue
        cat = backend.classify(site, d)
        if cat is None:
            stats["no category"] += 1
            continue
        key = (str(d["path"]), d["nameLine"])
        if key in seen_defs:
            stats["definition already used"] += 1
            continue
        seen_defs.add(key)
        if per_cat[cat] >= PER_CATEGORY:
            overflow.append((site, d, cat))
            continue
        per_cat[cat] += 1
        per_file[site["file"]] += 1
        accepted.append((site, d, cat))
    # Second pass: categories this project has few of leave room for the others, taken
    # round-robin over categories in the order they were found.
    by_cat = {c: [e for e in overflow if e[2] == c] for c in CATEGORIES}
    while len(accepted) < PER_PROJECT and any(by_cat.values()):
        for c in sorted(CATEGORIES, key=lambda c: per_cat[c]):
            while by_cat[c] and len(accepted) < PER_PROJECT:
                e = by_cat[c].pop(0)
                if per_file[e[0]["file"]] < file_cap:
                    per_cat[c] += 1
                    per_file[e[0]["file"]] += 1
                    accepted.append(e)
                    break
    accepted.sort(key=lambda e: (e[0]["file"], e[0]["line"], e[0]["col"]))
    log(f"{lang}/{proj['name']}: {len(accepted)} cases after {stats['attempts']} resolver calls "
        f"({dict(per_cat)}); {dict(stats)}")

    cases = []
    ref_cache: dict = {}
    prefix = f"{SHORT[lang]}-{proj['name'].split('/')[-1]}"
    for n, (site, d, cat) in enumerate(accepted, 1):
        header = backend.header(d)
        case = {
            "id": f"{prefix}-{n:02d}",
            "lang": lang,
            "project": proj["name"],
            "version": proj["version"],
            "file": site["file"], "line": site["line"], "col": site["col"],
            "name": site["name"],
            "category": cat,
            "siteText": backend.text(root / site["file"]).split("\n")[site["line"]].strip()[:200],
            "definition": {
                "file": str(d["path"].relative_to(root)),
                "name": d.get("name") or site["name"],
                "kind": d.get("kind") or site["ctx"].get("tokenType"),
                "nameLine": d["nameLine"],
                "firstLine": min(header["firstLine"], d["nameLine"]),
                "headerEnd": max(header["headerEnd"], d["nameLine"]),
                "startLine": d["startLine"], "endLine": d["endLine"],
                "nameText": backend.text(d["path"]).split("\n")[d["nameLine"]].strip()[:200],
            },
        }
        try:
            a, b, idents = backend.scope(site["file"], site["line"], site["col"])
            refs = set()
            errors = 0
            for (ln, col) in idents[:MAX_SCOPE_IDENTS]:
                k = (site["file"], ln, col)
                if k not in ref_cache:
                    try:
                        ref_cache[k] = _unique(backend.resolve(site["file"], ln, col))
                    except Exception:  # noqa: BLE001
                        ref_cache[k] = []
                        errors += 1
                for r in ref_cache[k]:
                    if is_under(r["path"], root):
                        refs.add((str(r["path"].relative_to(root)), r["startLine"], r["endLine"],
                                  r["nameLine"]))
            case["scope"] = [a, b]
            case["refs"] = [dict(zip(("file", "startLine", "endLine", "nameLine"), r, strict=True))
                            for r in sorted(refs)]
            case["refErrors"] = errors
        except Exception as e:  # noqa: BLE001 - recorded; the case still counts for recall
            case["scope"] = None
            case["refs"] = []
            case["refErrors"] = f"scope failed: {str(e)[:300]}"
        cases.append(case)
    log(f"{lang}/{proj['name']}: precision sets done ({time.monotonic() - t0:.0f}s in all)")
    return cases, {"attempts": stats["attempts"], "stats": dict(stats),
                   "seconds": round(time.monotonic() - t0, 1)}


def build(lang: str, force: bool = False) -> dict:
    """The case set of `lang`, from the cache or built now."""
    projects = load_projects()[lang]
    out = cases_path(lang, projects)
    if out.exists() and not force:
        return json.loads(out.read_text())
    t0 = time.monotonic()
    roots = fetch_all(lang, projects)
    fetched = time.monotonic() - t0
    cases, meta, failed = [], {}, []
    for proj in projects:
        root = roots[proj["name"]]
        backend = None
        try:
            backend = make_backend(lang, root, proj["sources"])
            got, meta[proj["name"]] = select_project(lang, proj, root, backend)
            cases.extend(got)
        except Exception as e:  # noqa: BLE001 - the other projects still make cases
            log(f"{lang}/{proj['name']}: case building failed: {e}")
            meta[proj["name"]] = {"error": str(e)[:2000]}
            failed.append(proj["name"])
        finally:
            if backend is not None:
                backend.close()
    data = {
        "key": cases_key(lang, projects), "lang": lang, "seed": SEED, "projects": projects,
        "fetchSeconds": round(fetched, 1), "buildSeconds": round(time.monotonic() - t0, 1),
        "perProject": meta, "cases": cases,
    }
    if failed:
        # Not cached: the next run tries again.
        data["failedProjects"] = failed
        out = out.with_suffix(".partial.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(out)
    log(f"{lang}: {len(cases)} cases written to {out} ({data['buildSeconds']}s)")
    return data


if __name__ == "__main__":
    import sys
    for lang in sys.argv[1:] or ["python", "rust", "typescript"]:
        build(lang, force=True)
