"""Install llama-cpp-python into this venv, compiled for this CPU without `-march=native`.

Run by scripts/setup.sh with the venv's Python, before the project itself:

    .venv/bin/python scripts/install_llama.py            # build (or reuse) and install
    .venv/bin/python scripts/install_llama.py --check    # exit 1 unless the install is ours

The flags come from models/cpu_features.py (`LOWENTROPY_LLAMA_CPU` picks a
portable level instead of this CPU's own set). pip's wheel cache does not key
on CMAKE_ARGS, so it would hand back whichever build came first (a native one,
say): the wheel is built with `--no-cache-dir` into our own cache, one folder
per flag set, and reused from there. The stamp written last records the flags
and the SHA-256 of the CPU backend, which `lowentropy doctor` and the tests
check against the installed file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION = "0.3.36"


def _load(name: str, path: Path):  # type: ignore[no-untyped-def]
    # Loaded by path: the project is not installed yet when this runs.
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


cpu_features = _load("lowentropy_cpu_features", ROOT / "models" / "cpu_features.py")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lowentropy" / "llama-wheels"


def stamp_path() -> Path:
    return Path(sys.prefix) / "share" / "lowentropy" / "llama-build.json"


def cpu_backend() -> Path | None:
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    lib = Path(next(iter(spec.submodule_search_locations))) / "lib"
    for name in ("libggml-cpu.so", "libggml-cpu.dylib", "ggml-cpu.dll"):
        if (lib / name).is_file():
            return lib / name
    return None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def installed_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llama-cpp-python")
    except PackageNotFoundError:
        return None


def current(args: list[str]) -> bool:
    """The installed build is the one our stamp describes, with these flags."""
    try:
        stamp = json.loads(stamp_path().read_text("utf-8"))
    except (OSError, ValueError):
        return False
    lib = cpu_backend()
    return (
        stamp.get("cmake_args") == args
        and stamp.get("version") == VERSION == installed_version()
        and lib is not None
        and stamp.get("lib_sha256") == sha256(lib)
    )


def build_wheel(args: list[str], folder: Path) -> Path:
    wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    if wheels:
        return wheels[-1]
    folder.mkdir(parents=True, exist_ok=True)
    print(f"lowentropy: compiling llama.cpp for this CPU (~4 min on 2 cores): {' '.join(args)}")
    env = dict(os.environ, CMAKE_ARGS=" ".join(args), FORCE_CMAKE="1")
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-cache-dir",
            "--no-binary", "llama-cpp-python", f"llama-cpp-python=={VERSION}", "-w", str(folder),
        ],
        env=env,
        check=True,
    )  # fmt: skip
    print(f"lowentropy: llama.cpp compiled in {time.monotonic() - started:.0f} s")
    wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    if not wheels:
        raise SystemExit(f"lowentropy: pip wheel left no llama-cpp-python wheel in {folder}")
    return wheels[-1]


def main(argv: list[str]) -> int:
    try:
        options = cpu_features.chosen_options()
    except cpu_features.CpuFeatureError as exc:
        print(f"lowentropy: {exc}", file=sys.stderr)
        return 2
    args = cpu_features.cmake_args(options)
    if "--check" in argv:
        ok = current(args)
        print("lowentropy: llama.cpp build " + ("matches" if ok else "does NOT match") + f" {args}")
        return 0 if ok else 1
    if current(args):
        print("lowentropy: llama.cpp already built for this CPU")
        return 0
    key = hashlib.sha256(
        json.dumps([VERSION, args, sys.implementation.cache_tag]).encode()
    ).hexdigest()[:16]
    wheel = build_wheel(args, cache_dir() / key)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--force-reinstall",
            str(wheel),
        ],
        check=True,
    )
    lib = cpu_backend()
    if lib is None:
        print("lowentropy: llama-cpp-python installed no CPU backend library", file=sys.stderr)
        return 1
    stamp = stamp_path()
    stamp.parent.mkdir(parents=True, exist_ok=True)
    level = os.environ.get(cpu_features.LEVEL_ENV) or cpu_features.DEFAULT_LEVEL
    stamp.write_text(
        json.dumps(
            {
                "version": VERSION,
                "level": level,
                "options": options,
                "cmake_args": args,
                "wheel": str(wheel),
                "lib": str(lib),
                "lib_sha256": sha256(lib),
            },
            indent=2,
        ),
        "utf-8",
    )
    print(f"lowentropy: llama.cpp {VERSION} installed for this CPU ({level}: {' '.join(options)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
