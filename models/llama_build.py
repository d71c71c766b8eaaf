"""Is the installed llama.cpp safe to run on this CPU? Checked before the first model load.

A llama.cpp build reports which instruction sets it was compiled for
(`llama_print_system_info()`; compile-time facts). Asking is itself a risk: the
library runs code built for those instructions while answering, so the question
goes to a subprocess, and a build that kills it with SIGILL or SIGSEGV is
reported instead of killing the server. A build that uses instructions this
CPU lacks, or ggml's AMX path (which segfaults on the first decode:
ggml-org/llama.cpp#20824), is refused with one sentence saying how to rebuild.

`scripts/setup.sh` builds llama-cpp-python with the flags `cpu_features.py`
chooses and writes a stamp (`<venv>/share/lowentropy/llama-build.json`) with
those flags and the SHA-256 of the CPU backend it produced, so a test and
`lowentropy doctor` can tell a portable build from a `-march=native` one.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs

from lowentropy.models import cpu_features
from lowentropy.models.errors import BackendConfigError

LLAMA_CPP_VERSION = "0.3.36"  # what scripts/setup.sh builds
REBUILD = "bash scripts/setup.sh (it rebuilds llama-cpp-python for this CPU)"
_PROBE = "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"


class LlamaBuildError(BackendConfigError):
    """The installed llama.cpp cannot run safely on this CPU."""


@attrs.frozen(kw_only=True)
class BuildReport:
    """What the installed llama.cpp was built for, against what this CPU can do."""

    system_info: str  # the build's own report ("" when the probe failed)
    compiled: frozenset[str]  # x86 features compiled in (SYSTEM_INFO_FEATURES names)
    cpu_supported: tuple[str, ...]  # ggml options this CPU supports
    missing: tuple[str, ...]  # compiled-in features this CPU lacks
    amx: bool  # the AMX path is compiled in
    probe_error: str | None  # why the probe failed, e.g. "killed by SIGILL"
    stamp: dict[str, Any] | None  # what scripts/setup.sh recorded, None when it did not build it
    stamp_matches: bool  # the installed CPU backend is the one the stamp describes

    @property
    def problems(self) -> list[str]:
        """Why this build must not run here; empty when it may."""
        out: list[str] = []
        if self.probe_error:
            out.append(f"llama.cpp could not even report its build here ({self.probe_error})")
        if self.missing:
            out.append(
                "llama.cpp was compiled for instructions this CPU lacks "
                f"({', '.join(self.missing)}): it would crash with an illegal instruction"
            )
        if self.amx and not _amx_allowed():
            out.append(
                "llama.cpp was compiled with AMX (a -march=native build on an AMX CPU), whose "
                "matrix path segfaults on the first decode (ggml-org/llama.cpp#20824)"
            )
        return out

    @property
    def portable(self) -> bool:
        """Built by scripts/setup.sh with explicit flags (GGML_NATIVE=OFF), unchanged since."""
        return bool(self.stamp) and self.stamp_matches and not self.problems


def _amx_allowed() -> bool:
    return os.environ.get(cpu_features.AMX_ENV) == "1" and cpu_features.kernel_grants_amx()


def llama_cpp_dir() -> Path | None:
    """The installed `llama_cpp` package's folder, found without importing it."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def cpu_backend_file() -> Path | None:
    """The shared library holding ggml's CPU kernels (what the instruction flags change)."""
    folder = llama_cpp_dir()
    if folder is None:
        return None
    for name in ("libggml-cpu.so", "libggml-cpu.dylib", "ggml-cpu.dll"):
        candidate = folder / "lib" / name
        if candidate.is_file():
            return candidate
    return None


def stamp_path() -> Path:
    return Path(sys.prefix) / "share" / "lowentropy" / "llama-build.json"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def read_stamp() -> dict[str, Any] | None:
    try:
        data = json.loads(stamp_path().read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def probe_system_info(
    python: str = sys.executable, timeout: float = 120.0
) -> tuple[str, str | None]:
    """(`llama_print_system_info()` of the installed build, None) or ("", why it failed),
    asked in a subprocess so that a build this CPU cannot run kills only the probe."""
    try:
        done = subprocess.run(
            [python, "-c", _PROBE], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return "", f"the probe took over {timeout:.0f} s"
    except OSError as exc:
        return "", f"could not start {python}: {exc}"
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        return "", f"killed by {name}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return "", f"exit status {done.returncode}: {last}"
    return done.stdout.strip(), None


def build_report(system_info: str | None = None, probe_error: str | None = None) -> BuildReport:
    """Check the installed build against this CPU (probing it unless `system_info` is given)."""
    if system_info is None and probe_error is None:
        system_info, probe_error = probe_system_info()
    info = cpu_features.parse_system_info(system_info or "")
    compiled = frozenset(cpu_features.compiled_features(info))
    flags = cpu_features.cpu_flags()
    x86 = cpu_features.is_x86_64()
    missing = tuple(cpu_features.missing_on_cpu(compiled, flags)) if x86 and flags else ()
    stamp = read_stamp()
    matches = False
    lib = cpu_backend_file()
    if stamp and lib is not None:
        matches = stamp.get("lib_sha256") == file_sha256(lib)
    return BuildReport(
        system_info=system_info or "",
        compiled=compiled,
        cpu_supported=tuple(cpu_features.supported_options(flags)),
        missing=missing,
        amx=info.get("AMX_INT8") == "1",
        probe_error=probe_error,
        stamp=stamp,
        stamp_matches=matches,
    )


def _probe_cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lowentropy" / "llama-build-probe.json"


@functools.cache
def _checked(lib: str, size: int, mtime_ns: int) -> BuildReport:
    """The report for this build file, probing it only when no earlier probe on this CPU
    recorded a clean answer for exactly this file (a server start then costs nothing)."""
    key = {
        "lib": lib,
        "size": size,
        "mtime_ns": mtime_ns,
        "cpu": hashlib.sha256(" ".join(sorted(cpu_features.cpu_flags())).encode()).hexdigest(),
    }
    cache = _probe_cache_file()
    try:
        saved = json.loads(cache.read_text("utf-8"))
        if isinstance(saved, dict) and saved.get("key") == key:
            return build_report(system_info=str(saved["system_info"]))
    except (OSError, ValueError, KeyError):
        pass
    report = build_report()
    if not report.probe_error:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps({"key": key, "system_info": report.system_info}), "utf-8")
        except OSError:
            pass  # only costs a probe next time
    return report


def ensure_runnable() -> BuildReport:
    """Raise LlamaBuildError when the installed build must not run here (checked once per
    build file per process; the probe, ~0.5 s, once per build file and CPU)."""
    lib = cpu_backend_file()
    if lib is None:
        report = build_report()
    else:
        st = lib.stat()
        report = _checked(str(lib), st.st_size, st.st_mtime_ns)
    problems = report.problems
    if problems:
        raise LlamaBuildError("; ".join(problems) + f". Fix: {REBUILD}")
    return report
