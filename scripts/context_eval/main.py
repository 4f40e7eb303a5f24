"""The benchmark's command line (run by scripts/context-eval.sh inside the cache's venv):
builds or loads the case set per language, scores a binary on it, prints a Markdown table
and writes every case with its result as JSON. `--case ID` reruns one case and prints its
rendered snapshot; `--subset` scores a small fixed subset (for CI).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import CATEGORIES, LANGS, Rng, cache_dir, load_projects, log, project_dir
from score import run_snapshot, score_cases, summarize, table

SUBSET_PER_LANG = 10


def subset(cases: list[dict], langs: list[str]) -> list[dict]:
    """A fixed small subset: per language, two cases of each category (from two
    projects where it can), picked in a seeded order."""
    keep = set()
    per_cat = SUBSET_PER_LANG // len(CATEGORIES)
    by_id = {c["id"]: c for c in cases}
    for lang in langs:
        for cat in CATEGORIES:
            ids = sorted(c["id"] for c in cases if c["lang"] == lang and c["category"] == cat)
            order = Rng(f"subset:{lang}:{cat}").shuffle(ids)
            chosen, projects = [], set()
            for i in order:  # first pass: distinct projects
                if len(chosen) < per_cat and by_id[i]["project"] not in projects:
                    chosen.append(i)
                    projects.add(by_id[i]["project"])
            for i in order:
                if len(chosen) < per_cat and i not in chosen:
                    chosen.append(i)
            keep.update(chosen)
    return [c for c in cases if c["id"] in keep]


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="context-eval.sh", description=__doc__)
    ap.add_argument("--bin", required=True, help="the infinity-matrix binary to score")
    ap.add_argument("--langs", default=",".join(LANGS),
                    help="comma-separated: python,rust,typescript,java")
    ap.add_argument("--out", help="directory for results.json (default: <cache>/results)")
    ap.add_argument("--subset", action="store_true",
                    help=f"score {SUBSET_PER_LANG} fixed cases per language")
    ap.add_argument("--case", action="append", default=[],
                    help="score only this case id (repeatable; a prefix like py-click works) "
                         "and print its rendered snapshot")
    ap.add_argument("--budget", type=int, default=4096)
    ap.add_argument("--jobs", type=int, default=2, help="snapshots run at once")
    ap.add_argument("--rebuild-cases", action="store_true", help="build the case sets again")
    ap.add_argument("--no-diagnose", action="store_true",
                    help="do not rerun missed cases with an unlimited budget")
    return ap.parse_args(argv)


def main(argv) -> int:
    args = parse_args(argv)
    langs = [x.strip() for x in args.langs.split(",") if x.strip()]
    bad = [x for x in langs if x not in LANGS]
    if bad:
        print(f"unknown language(s): {bad}; known: {LANGS}", file=sys.stderr)
        return 2
    binary = str(Path(args.bin).resolve())
    if not Path(binary).is_file():
        print(f"no binary at {binary}", file=sys.stderr)
        return 2
    projects = load_projects()

    from build_cases import build  # imported late: it pulls in the resolvers
    t0 = time.monotonic()
    cases, build_info = [], {}
    for lang in list(langs):
        tb = time.monotonic()
        try:
            data = build(lang, force=args.rebuild_cases)
        except Exception as e:  # noqa: BLE001 - the other languages are still scored
            log(f"{lang}: no case set: {e}")
            build_info[lang] = {"error": str(e)[:2000]}
            langs.remove(lang)
            continue
        build_info[lang] = {"key": data["key"], "cases": len(data["cases"]),
                            "loadOrBuildSeconds": round(time.monotonic() - tb, 1),
                            "buildSeconds": data.get("buildSeconds"),
                            "failedProjects": data.get("failedProjects", [])}
        cases.extend(data["cases"])
    case_seconds = time.monotonic() - t0
    roots = {(lang, p["name"]): project_dir(lang, p).resolve()
             for lang in langs for p in projects[lang]}

    if args.case:
        cases = [c for c in cases if any(c["id"] == k or c["id"].startswith(k) for k in args.case)]
        if not cases:
            print(f"no case matches {args.case}", file=sys.stderr)
            return 2
    elif args.subset:
        cases = subset(cases, langs)

    log(f"scoring {len(cases)} cases with {binary}")
    t1 = time.monotonic()
    scored = score_cases(cases, roots, binary, args.budget, jobs=args.jobs,
                         diagnose_misses=not args.no_diagnose)
    score_seconds = time.monotonic() - t1

    if args.case:
        for c in scored:
            root = roots[(c["lang"], c["project"])]
            snap = run_snapshot(binary, root, c, args.budget)
            d = c["definition"]
            print(f"## {c['id']} ({c['category']}): {c['file']}:{c['line'] + 1}:{c['col'] + 1} "
                  f"`{c['name']}` -> {d['file']}:{d['nameLine'] + 1} "
                  f"(header {d['nameLine'] + 1}-{d['headerEnd'] + 1})")
            print(f"site: {c['siteText']}\ndefinition: {d['nameText']}")
            if "error" in snap:
                print(f"binary failed: {snap['error']}")
                continue
            print(snap.get("rendered", ""))
            print(f"-- {len(snap.get('items', []))} items, {snap.get('totalTokens')} of "
                  f"{snap.get('budgetTokens')} tokens")
            print(json.dumps({k: v for k, v in c["result"].items()}, indent=1))
        return 0

    summary = summarize(scored, langs)
    out_dir = Path(args.out) if args.out else cache_dir() / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {
        "binary": binary, "budget": args.budget, "subset": args.subset,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "caseSets": build_info,
        "seconds": {"casesLoadOrBuild": round(case_seconds, 1), "scoring": round(score_seconds, 1)},
        "projects": {lang: projects[lang] for lang in langs},
        "summary": summary,
        "cases": scored,
    }
    out_file = out_dir / "results.json"
    out_file.write_text(json.dumps(result, indent=1))
    print(table(summary))
    print()
    for lang, s in summary.items():
        if s["missCauses"]:
            causes = ", ".join(f"{k} {v}" for k, v in sorted(s["missCauses"].items(),
                                                              key=lambda kv: -kv[1]))
            print(f"Misses, {lang}: {causes}.")
    print()
    keys = ", ".join(f"{k} {v.get('key', 'FAILED')}" for k, v in build_info.items())
    print(f"{len(scored)} cases; case sets {case_seconds:.0f}s ({keys}), scoring "
          f"{score_seconds:.0f}s. Results: {out_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
