"""Scores a binary's context snapshots on the benchmark's cases: runs
`infinity-matrix context FILE:LINE:COL --root ROOT --budget N --json` per case, maps each
item's text back to file lines (honouring `elided` ranges), and computes recall (the
definition's name and header lines shown verbatim), precision (definition items that
cover something the code at the cursor refers to), and token use. A missed case is run
again with a very large budget to tell why it was missed.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote, urlparse

from common import CATEGORIES, read_lines, utf8_to_char

HUGE_BUDGET = 1_000_000
NO_ITEM = "no item from that file"
LINE_MISSING = "header line missing"
NOT_VERBATIM = "line not verbatim"


def uri_path(uri: str) -> Path | None:
    if uri.startswith("file://"):
        return Path(unquote(urlparse(uri).path))
    if uri.startswith("/"):
        return Path(uri)
    return None


def canonical(p: Path) -> str:
    return os.path.realpath(p)


def run_snapshot(binary: str, root: Path, case: dict, budget: int, timeout: float = 120) -> dict:
    f = root / case["file"]
    cmd = [binary, "context", f"{f}:{case['line'] + 1}:{case['col'] + 1}", "--root", str(root),
           "--budget", str(budget), "--json"]
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env={**os.environ, "INFINITY_MATRIX_LOG": "error"})
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout}s", "seconds": timeout}
    secs = round(time.monotonic() - t0, 3)
    if p.returncode != 0:
        return {"error": f"exit {p.returncode}: {p.stderr.strip()[-500:]}", "seconds": secs}
    try:
        snap = json.loads(p.stdout)
    except ValueError as e:
        return {"error": f"bad JSON: {e}", "seconds": secs}
    snap["seconds"] = secs
    return snap


def item_lines(item: dict, file_lines: list[str]) -> dict[int, tuple[str, list[str]]]:
    """File line -> (text shown, what that line may show: the whole file line, or the part
    the item's range spans when it starts or ends inside the line).

    Text lines are file lines from range.start.line on, except that for each `elided`
    [first, last] range one marker line stands in the text in its place."""
    text = item.get("text") or ""
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    elided = [tuple(e) for e in (item.get("elided") or [])]
    rng = item["range"]
    start_line, start_col = rng["start"]["line"], rng["start"]["character"]
    end_line, end_col = rng["end"]["line"], rng["end"]["character"]
    out: dict[int, tuple[str, list[str]]] = {}
    cur, ei = start_line, 0
    for idx, shown in enumerate(lines):
        if ei < len(elided) and elided[ei][0] == cur:
            cur = elided[ei][1] + 1
            ei += 1
            continue
        if cur < len(file_lines):
            full = file_lines[cur]
            # A method's range starts after its indentation, and a range may end inside
            # its last line. Columns in the CLI's JSON count UTF-8 bytes.
            a = utf8_to_char(full, start_col) if idx == 0 and cur == start_line else 0
            b = (utf8_to_char(full, end_col) if idx == len(lines) - 1 and cur == end_line
                 else len(full))
            part = full[a:b]
            out[cur] = (shown.rstrip("\r"), [full, part])
        cur += 1
    return out


def check_item(item: dict, need: list[int], file_lines: list[str]) -> tuple[str | None, list]:
    """None when the item shows every needed line verbatim, else the reason and lines."""
    got = item_lines(item, file_lines)
    missing = [n for n in need if n not in got]
    wrong = [n for n in need if n in got and got[n][0] not in got[n][1]]
    if wrong:
        return NOT_VERBATIM, wrong
    if missing:
        return LINE_MISSING, missing
    return None, []


def evaluate(case: dict, snap: dict, root: Path, lines_cache: dict) -> dict:
    d = case["definition"]
    def_path = root / d["file"]
    key = canonical(def_path)
    if key not in lines_cache:
        lines_cache[key] = read_lines(def_path)
    file_lines = lines_cache[key]
    need = list(range(d["nameLine"], d["headerEnd"] + 1))
    same = [it for it in snap.get("items", [])
            if (p := uri_path(it.get("uri", ""))) is not None and canonical(p) == key]
    result = {"found": False, "miss": NO_ITEM, "items": []}
    rank = {LINE_MISSING: 1, NOT_VERBATIM: 2}
    best = 0
    for it in same:
        why, bad = check_item(it, need, file_lines)
        summary = {"kind": it.get("kind"), "range": [it["range"]["start"]["line"],
                                                     it["range"]["end"]["line"]],
                   "reason": it.get("reason"), "tokens": it.get("tokens"),
                   "firstText": (it.get("text") or "").split("\n")[0][:160],
                   "textLines": len((it.get("text") or "").split("\n"))}
        if it.get("elided"):
            summary["elided"] = it["elided"]
        if why is None:
            result = {"found": True, "miss": None, "items": [summary]}
            break
        summary["problem"] = why
        summary["lines"] = [n for n in bad][:5]
        result["items"].append(summary)
        if rank[why] > best:
            best = rank[why]
            result["miss"] = why
    return result


def precision_of(case: dict, snap: dict, root: Path) -> tuple[int, int, list]:
    """(definition items covering a definition the code at the cursor refers to, all
    definition items, the items that do not)."""
    refs: dict[str, list] = {}
    for r in case.get("refs") or []:
        refs.setdefault(canonical(root / r["file"]), []).append(r)
    good = total = 0
    stray = []
    for it in snap.get("items", []):
        if it.get("kind") != "definition":
            continue
        total += 1
        p = uri_path(it.get("uri", ""))
        a, b = it["range"]["start"]["line"], it["range"]["end"]["line"]
        hits = refs.get(canonical(p), []) if p else []
        if any(a <= r["nameLine"] <= b or a == r["startLine"] for r in hits):
            good += 1
        else:
            stray.append({"uri": it.get("uri"), "range": [a, b], "reason": it.get("reason")})
    return good, total, stray


def diagnose(case: dict, root: Path, binary: str, lines_cache: dict) -> dict:
    """Why a case was missed: the snapshot again with a budget nothing is cut by."""
    snap = run_snapshot(binary, root, case, HUGE_BUDGET)
    if "error" in snap:
        return {"cause": "binary failed", "detail": snap["error"]}
    res = evaluate(case, snap, root, lines_cache)
    if res["found"]:
        return {"cause": "crowded out by budget", "unlimitedTokens": snap.get("totalTokens")}
    diag = _diagnose_miss(case, snap, res)
    diag["unlimitedDefinitions"] = sum(1 for it in snap.get("items", [])
                                       if it.get("kind") == "definition")
    diag["unlimitedTokens"] = snap.get("totalTokens")
    return diag


def _diagnose_miss(case: dict, snap: dict, res: dict) -> dict:
    d = case["definition"]
    name = d["name"]
    # Items that stand for the definition itself: they start at it (from its doc comment
    # or decorators to its name line) and reach its name line. A class shown as a
    # signature merely contains a method's lines; it does not stand for the method.
    lo = min(d["firstLine"], d.get("startLine", d["firstLine"]))
    own = [i for i in res["items"] if lo <= i["range"][0] <= d["nameLine"] <= i["range"][1]]
    if own:
        collapsed = [i for i in own if (i.get("reason") or "").startswith("signature")
                     or i["textLines"] + sum(b - a for a, b in i.get("elided") or [])
                     < i["range"][1] - i["range"][0] + 1]
        if collapsed:
            return {"cause": "signature instead of source", "items": own}
        if any(i["problem"] == NOT_VERBATIM for i in own):
            return {"cause": "lines differ from the file", "items": own}
        return {"cause": "header lines not covered", "items": own}
    others = [it for it in snap.get("items", []) if it.get("kind") == "definition"
              and name in (it.get("reason") or "").split()]
    if others:
        return {"cause": "another definition of the name shown",
                "shown": [{"uri": o["uri"], "line": o["range"]["start"]["line"],
                           "reason": o.get("reason")} for o in others[:3]]}
    return {"cause": "definition absent", "itemsFromThatFile": res["items"][:5]}


def score_cases(cases: list[dict], roots: dict, binary: str, budget: int, jobs: int = 2,
                diagnose_misses: bool = True) -> list[dict]:
    lines_cache: dict = {}

    def one(case):
        root = roots[(case["lang"], case["project"])]
        snap = run_snapshot(binary, root, case, budget)
        res = {"seconds": snap.get("seconds")}
        if "error" in snap:
            res.update({"found": False, "miss": "binary failed", "error": snap["error"],
                        "totalTokens": None, "precise": 0, "definitions": 0})
        else:
            res.update(evaluate(case, snap, root, lines_cache))
            good, total, stray = precision_of(case, snap, root)
            res.update({"totalTokens": snap.get("totalTokens"), "precise": good,
                        "definitions": total, "strayDefinitions": stray,
                        "itemKinds": [it.get("kind") for it in snap.get("items", [])]})
            if not res["found"] and diagnose_misses:
                res["diagnosis"] = diagnose(case, root, binary, lines_cache)
        return {**case, "result": res}

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, cases))


def _pct(a: int, b: int) -> str:
    return f"{a}/{b} ({100 * a / b:.0f}%)" if b else "–"


def summarize(scored: list[dict], langs: list[str]) -> dict:
    out = {}
    for lang in list(langs) + ["overall"]:
        cs = [c for c in scored if lang == "overall" or c["lang"] == lang]
        if not cs:
            continue
        found = sum(1 for c in cs if c["result"]["found"])
        per_cat = {cat: [sum(1 for c in cs if c["category"] == cat and c["result"]["found"]),
                         sum(1 for c in cs if c["category"] == cat)] for cat in CATEGORIES}
        precise = sum(c["result"].get("precise", 0) for c in cs)
        defs = sum(c["result"].get("definitions", 0) for c in cs)
        tokens = [c["result"]["totalTokens"] for c in cs
                  if c["result"].get("totalTokens") is not None]
        causes: dict[str, int] = {}
        for c in cs:
            if not c["result"]["found"]:
                cause = (c["result"].get("diagnosis") or {}).get("cause") or c["result"]["miss"]
                causes[cause] = causes.get(cause, 0) + 1
        out[lang] = {"found": found, "total": len(cs), "recall": found / len(cs),
                     "perCategory": per_cat, "precise": precise, "definitions": defs,
                     "precision": precise / defs if defs else None,
                     "medianTokens": statistics.median(tokens) if tokens else None,
                     "missCauses": causes}
    return out


def table(summary: dict) -> str:
    names = {"python": "Python", "rust": "Rust", "typescript": "TypeScript", "java": "Java",
             "overall": "**Overall**"}
    rows = ["| language | recall | " + " | ".join(CATEGORIES) + " | precision | median tokens |",
            "| --- | --- | " + " | ".join("---" for _ in CATEGORIES) + " | --- | --- |"]
    for lang, s in summary.items():
        cats = " | ".join(_pct(*s["perCategory"][c]) for c in CATEGORIES)
        med = f"{s['medianTokens']:.0f}" if s["medianTokens"] is not None else "–"
        rows.append(f"| {names.get(lang, lang)} | {_pct(s['found'], s['total'])} | {cats} | "
                    f"{_pct(s['precise'], s['definitions'])} | {med} |")
    lines = ["\n".join(rows), ""]
    checks = []
    for lang, s in summary.items():
        target = 0.90 if lang == "overall" else 0.85
        ok = s["recall"] >= target
        checks.append(f"recall {names.get(lang, lang).strip('*')} ≥ {target:.0%}: "
                      f"{'met' if ok else 'missed'}")
    o = summary.get("overall")
    if o and o["precision"] is not None:
        for lang, s in summary.items():
            if s["precision"] is not None:
                checks.append(f"precision {names.get(lang, lang).strip('*')} ≥ 70%: "
                              f"{'met' if s['precision'] >= 0.70 else 'missed'}")
    lines.append("Targets: " + "; ".join(checks) + ".")
    return "\n".join(lines)
