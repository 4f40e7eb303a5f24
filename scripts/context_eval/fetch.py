"""Fetches the pinned projects of the benchmark into the cache, from the package registries
through their ordinary clients: Python sdists with pip, crates with cargo (a throwaway
project that depends on the pinned crates, then `cargo fetch`, sources copied out of
cargo's registry), npm tarballs with `npm pack`. Also installs the TypeScript resolver
(the `typescript` npm package) and the rust-analyzer component.

Each project lands in `<cache>/projects/<lang>/<name>-<version>/` and is fetched once
(a `.complete` marker says it is whole).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from common import cache_dir, load_projects, log, project_dir, run


def _extract_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tf:
        if sys.version_info >= (3, 12):
            tf.extractall(dest, filter="data")
        else:
            for m in tf.getmembers():
                if m.name.startswith("/") or ".." in Path(m.name).parts:
                    raise RuntimeError(f"unsafe path in {archive}: {m.name}")
            tf.extractall(dest)


def _finish(tmp: Path, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(tmp), str(dest))
    (dest / ".complete").write_text("")
    return dest


def fetch_python(proj: dict) -> Path:
    dest = project_dir("python", proj)
    if (dest / ".complete").exists():
        return dest
    with tempfile.TemporaryDirectory(dir=cache_dir()) as td:
        td = Path(td)
        # The project's own sdist (`--no-binary NAME`); pip may still fetch its build
        # backend as a wheel to read the sdist's metadata.
        run([sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", proj["name"],
             "--no-deps", "-d", td / "dl", f"{proj['name']}=={proj['version']}"], timeout=900)
        archives = list((td / "dl").iterdir())
        if len(archives) != 1:
            raise RuntimeError(f"expected one sdist for {proj['name']}, got {archives}")
        _extract_tar(archives[0], td / "x")
        (top,) = list((td / "x").iterdir())
        return _finish(top, dest)


def fetch_typescript(proj: dict) -> Path:
    dest = project_dir("typescript", proj)
    if (dest / ".complete").exists():
        return dest
    with tempfile.TemporaryDirectory(dir=cache_dir()) as td:
        td = Path(td)
        (td / "dl").mkdir()
        run(["npm", "pack", "--silent", f"{proj['name']}@{proj['version']}",
             "--pack-destination", td / "dl"], cwd=td, timeout=600)
        (archive,) = list((td / "dl").iterdir())
        _extract_tar(archive, td / "x")
        pkg = td / "x" / "package"
        # Keep what a checkout of the sources would have: the TypeScript sources and the
        # manifests, not the compiled bundles the tarball also ships.
        keep = td / "keep"
        keep.mkdir()
        for entry in pkg.iterdir():
            if entry.name == "src" or entry.name == "package.json" or (
                entry.name.startswith("tsconfig") and entry.suffix == ".json"
            ):
                if entry.is_dir():
                    shutil.copytree(entry, keep / entry.name)
                else:
                    shutil.copy2(entry, keep / entry.name)
        return _finish(keep, dest)


def _cargo_home() -> Path:
    return Path(os.environ.get("CARGO_HOME") or Path.home() / ".cargo")


def fetch_rust(projects: list[dict]) -> dict[str, Path]:
    todo = [p for p in projects if not (project_dir("rust", p) / ".complete").exists()]
    if todo:
        shim = cache_dir() / "rust-fetch"
        (shim / "src").mkdir(parents=True, exist_ok=True)
        deps = "\n".join(f'{p["name"]} = "={p["version"]}"' for p in projects)
        (shim / "Cargo.toml").write_text(
            '[package]\nname = "context-eval-fetch"\nversion = "0.0.0"\nedition = "2021"\n'
            "publish = false\n\n[dependencies]\n" + deps + "\n\n[workspace]\n"
        )
        (shim / "src" / "lib.rs").write_text("")
        run(["cargo", "fetch", "--quiet"], cwd=shim, timeout=900)
        for p in todo:
            name = f"{p['name']}-{p['version']}"
            found = sorted((_cargo_home() / "registry" / "src").glob(f"*/{name}"))
            if not found:
                raise RuntimeError(f"cargo fetch left no sources for {name}")
            with tempfile.TemporaryDirectory(dir=cache_dir()) as td:
                tmp = Path(td) / name
                shutil.copytree(found[0], tmp, symlinks=True)
                for f in tmp.rglob("*"):
                    if f.is_file():
                        f.chmod(f.stat().st_mode | 0o200)
                # rust-analyzer needs `cargo metadata` to work on the crate: a lockfile and
                # its dependencies (dev ones too) fetched.
                run(["cargo", "generate-lockfile", "--quiet"], cwd=tmp, timeout=900)
                run(["cargo", "fetch", "--quiet"], cwd=tmp, timeout=900)
                _finish(tmp, project_dir("rust", p))
    return {p["name"]: project_dir("rust", p) for p in projects}


def ensure_typescript_package() -> Path:
    """The `typescript` npm package (the resolver of TypeScript cases), pinned, in the cache."""
    version = load_projects()["tools"]["typescript"]
    d = cache_dir() / "node"
    mod = d / "node_modules" / "typescript"
    try:
        if json.loads((mod / "package.json").read_text())["version"] == version:
            return mod
    except (OSError, ValueError, KeyError):
        pass
    d.mkdir(parents=True, exist_ok=True)
    (d / "package.json").write_text('{"name": "context-eval-node", "private": true}\n')
    run(["npm", "install", "--silent", "--no-audit", "--no-fund", f"typescript@{version}"],
        cwd=d, timeout=900)
    return mod


def ensure_rust_analyzer() -> str:
    """rust-analyzer from rustup (rust-src too, so std types resolve)."""
    run(["rustup", "component", "add", "rust-analyzer"], timeout=900)
    try:
        run(["rustup", "component", "add", "rust-src"], timeout=900)
    except Exception as e:  # noqa: BLE001 - std resolution is a nicety, not required
        log(f"rust-src not installed ({e}); std types will not resolve")
    return run(["rustup", "which", "rust-analyzer"]).stdout.strip()


def fetch_java(proj: dict) -> Path:
    """A Java project: the sdist of a PyPI package or the tarball of an npm package that ships
    Java sources (`registry`), kept whole (the sources are a subdirectory)."""
    dest = project_dir("java", proj)
    if (dest / ".complete").exists():
        return dest
    with tempfile.TemporaryDirectory(dir=cache_dir()) as td:
        td = Path(td)
        (td / "dl").mkdir()
        if proj["registry"] == "pypi":
            run([sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", proj["name"],
                 "--no-deps", "-d", td / "dl",
                 f"{proj['name']}=={proj['version']}"], timeout=900)
        else:
            run(["npm", "pack", "--silent", f"{proj['name']}@{proj['version']}",
                 "--pack-destination", td / "dl"], cwd=td, timeout=600)
        (archive,) = list((td / "dl").iterdir())
        _extract_tar(archive, td / "x")
        (top,) = list((td / "x").iterdir())
        return _finish(top, dest)


def fetch_all(lang: str, projects: list[dict]) -> dict[str, Path]:
    if lang == "java":
        return {p["name"]: fetch_java(p) for p in projects}
    if lang == "python":
        return {p["name"]: fetch_python(p) for p in projects}
    if lang == "typescript":
        return {p["name"]: fetch_typescript(p) for p in projects}
    if lang == "rust":
        return fetch_rust(projects)
    raise ValueError(lang)


if __name__ == "__main__":
    cfg = load_projects()
    for lang in sys.argv[1:] or ["python", "rust", "typescript"]:
        for name, path in fetch_all(lang, cfg[lang]).items():
            print(lang, name, path)
