"""Which x86 instructions llama.cpp is compiled for, chosen from the CPU, never `-march=native`.

pip builds llama-cpp-python with `GGML_NATIVE=ON` (`-march=native`). On an
AVX-512 + AMX Xeon that turns on ggml's AMX path, whose `ggml_backend_amx_mul_mat`
segfaults on the first decode (ggml-org/llama.cpp#20824; dspy#10079 hit it on
CI runners); and a native build dies with SIGILL on any older CPU the venv is
copied to. So setup passes `GGML_NATIVE=OFF` and every instruction-set option
explicitly (ggml turns AVX/AVX2/FMA/F16C/BMI2 on by default when not native):
the features this CPU has and its kernel enables, or a named portable level.
AMX stays off unless asked for (`LOWENTROPY_LLAMA_AMX=1`) and the kernel grants
this process the AMX tile state.

Standard library only: `scripts/setup.sh` runs this file with the system Python
before the venv has anything in it:

    python3 models/cpu_features.py cmake-args   # the CMAKE_ARGS for llama-cpp-python
    python3 models/cpu_features.py describe     # the CPU's features and the chosen level
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from collections.abc import Iterable, Mapping

# ggml's CMake option → the /proc/cpuinfo flags it needs (all of them), in ggml's order.
GGML_OPTIONS: dict[str, tuple[str, ...]] = {
    "GGML_SSE42": ("sse4_2",),
    "GGML_AVX": ("avx",),
    "GGML_F16C": ("f16c",),
    "GGML_FMA": ("fma",),
    "GGML_BMI2": ("bmi2",),
    "GGML_AVX2": ("avx2",),
    "GGML_AVX_VNNI": ("avx_vnni",),
    "GGML_AVX512": ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"),
    "GGML_AVX512_VBMI": ("avx512vbmi",),
    "GGML_AVX512_VNNI": ("avx512_vnni",),
    "GGML_AVX512_BF16": ("avx512_bf16",),
    "GGML_AMX_TILE": ("amx_tile",),
    "GGML_AMX_INT8": ("amx_int8",),
    "GGML_AMX_BF16": ("amx_bf16",),
}
AMX_OPTIONS = ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16")

# Names `llama_print_system_info()` prints for compiled-in x86 features → cpuinfo flags.
# (Compile-time facts: ggml reports what it was built for, not what the CPU has.)
SYSTEM_INFO_FEATURES: dict[str, tuple[str, ...]] = {
    "SSE3": ("pni",),  # cpuinfo calls SSE3 "pni"
    "SSSE3": ("ssse3",),
    "AVX": ("avx",),
    "AVX_VNNI": ("avx_vnni",),
    "AVX2": ("avx2",),
    "F16C": ("f16c",),
    "FMA": ("fma",),
    "BMI2": ("bmi2",),
    "AVX512": GGML_OPTIONS["GGML_AVX512"],
    "AVX512_VBMI": ("avx512vbmi",),
    "AVX512_VNNI": ("avx512_vnni",),
    "AVX512_BF16": ("avx512_bf16",),
    "AMX_INT8": ("amx_int8",),
}

# Portable levels: what a venv built at that level needs of any CPU it runs on.
# `host` is this CPU's own set (fastest here; another CPU must have the same features).
LEVELS: dict[str, tuple[str, ...]] = {
    "x86-64": (),
    "x86-64-v2": ("GGML_SSE42",),
    "x86-64-v3": ("GGML_SSE42", "GGML_AVX", "GGML_F16C", "GGML_FMA", "GGML_BMI2", "GGML_AVX2"),
}
DEFAULT_LEVEL = "host"
LEVEL_ENV = "LOWENTROPY_LLAMA_CPU"
AMX_ENV = "LOWENTROPY_LLAMA_AMX"

_SYS_ARCH_PRCTL = 158  # x86-64 Linux syscall number
_ARCH_REQ_XCOMP_PERM = 0x1023
_XFEATURE_XTILEDATA = 18


class CpuFeatureError(RuntimeError):
    """The requested level needs instructions this CPU lacks, or the level is unknown."""


def is_x86_64() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags as Linux reports them (the kernel drops the ones it does
    not enable, e.g. AVX-512 without its register state). Empty when unknown."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def kernel_grants_amx() -> bool:
    """Whether Linux gives this process the AMX tile state (what ggml's AMX path asks for)."""
    if not (sys.platform.startswith("linux") and is_x86_64()):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.syscall(_SYS_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA)) == 0
    except (OSError, AttributeError):
        return False


def supported_options(flags: Iterable[str]) -> list[str]:
    """ggml options whose instructions the flags all include (AMX included: see `chosen_options`)."""
    have = set(flags)
    return [opt for opt, needs in GGML_OPTIONS.items() if all(f in have for f in needs)]


def chosen_options(
    level: str | None = None,
    flags: Iterable[str] | None = None,
    *,
    allow_amx: bool | None = None,
    amx_granted: bool | None = None,
) -> list[str]:
    """The ggml options to turn on: every one this CPU supports (`host`) or a portable level's.

    AMX only when asked for (`allow_amx`, default from LOWENTROPY_LLAMA_AMX) and granted
    by the kernel. A portable level the CPU does not reach is a CpuFeatureError: the build
    would not run here.
    """
    level = level or os.environ.get(LEVEL_ENV) or DEFAULT_LEVEL
    have = supported_options(cpu_flags() if flags is None else flags)
    if level == "host":
        options = [o for o in have if o not in AMX_OPTIONS]
        if allow_amx is None:
            allow_amx = os.environ.get(AMX_ENV, "") == "1"
        if allow_amx:
            granted = kernel_grants_amx() if amx_granted is None else amx_granted
            if granted:
                options += [o for o in have if o in AMX_OPTIONS]
        return options
    if level not in LEVELS:
        valid = ", ".join(["host", *LEVELS])
        raise CpuFeatureError(f"unknown {LEVEL_ENV} level {level!r}; valid: {valid}")
    missing = [o for o in LEVELS[level] if o not in have]
    if missing:
        raise CpuFeatureError(
            f"{LEVEL_ENV}={level} needs {', '.join(missing)}, which this CPU lacks"
        )
    return list(LEVELS[level])


def cmake_args(options: Iterable[str], *, x86: bool | None = None) -> list[str]:
    """`-D` arguments: native off and, on x86-64, each instruction-set option on or off."""
    args = ["-DGGML_NATIVE=OFF", "-DLLAVA_BUILD=OFF"]
    if x86 if x86 is not None else is_x86_64():
        on = set(options)
        args += [f"-D{opt}={'ON' if opt in on else 'OFF'}" for opt in GGML_OPTIONS]
    return args


def parse_system_info(text: str) -> dict[str, str]:
    """`llama_print_system_info()` → {feature: value} for its `CPU :` section."""
    out: dict[str, str] = {}
    for section in text.split("|"):
        part = section.strip()
        if " : " in part:  # "CPU : SSE3 = 1" starts a backend's section
            part = part.split(" : ", 1)[1]
        name, sep, value = part.partition("=")
        if sep:
            out[name.strip()] = value.strip()
    return out


def compiled_features(system_info: Mapping[str, str]) -> set[str]:
    """The x86 instruction-set features a build reports as compiled in."""
    return {k for k, v in system_info.items() if k in SYSTEM_INFO_FEATURES and v == "1"}


def missing_on_cpu(compiled: Iterable[str], flags: Iterable[str]) -> list[str]:
    """Compiled-in features this CPU cannot run (an illegal instruction waiting to happen)."""
    have = set(flags)
    return sorted(f for f in compiled if not all(n in have for n in SYSTEM_INFO_FEATURES[f]))


def expected_features(options: Iterable[str]) -> set[str]:
    """What `llama_print_system_info()` reports for a build with these ggml options."""
    on = set(options)
    names = {
        "GGML_AVX": "AVX", "GGML_AVX_VNNI": "AVX_VNNI", "GGML_AVX2": "AVX2",
        "GGML_F16C": "F16C", "GGML_FMA": "FMA", "GGML_BMI2": "BMI2",
        "GGML_AVX512": "AVX512", "GGML_AVX512_VBMI": "AVX512_VBMI",
        "GGML_AVX512_VNNI": "AVX512_VNNI", "GGML_AVX512_BF16": "AVX512_BF16",
        "GGML_AMX_INT8": "AMX_INT8",
    }  # fmt: skip
    out = {name for opt, name in names.items() if opt in on}
    if "GGML_SSE42" in on:  # -msse4.2 implies SSE3 and SSSE3
        out |= {"SSE3", "SSSE3"}
    return out


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "describe"
    try:
        options = chosen_options()
    except CpuFeatureError as exc:
        print(f"lowentropy: {exc}", file=sys.stderr)
        return 2
    if command == "cmake-args":
        print(" ".join(cmake_args(options)))
        return 0
    if command == "options":
        print(" ".join(options))
        return 0
    if command == "describe":
        level = os.environ.get(LEVEL_ENV) or DEFAULT_LEVEL
        print(f"machine: {platform.machine()}")
        print(f"supported: {' '.join(supported_options(cpu_flags())) or '(none known)'}")
        print(f"level: {level}")
        print(f"chosen: {' '.join(options) or '(baseline x86-64)'}")
        return 0
    print(f"usage: {argv and argv[0]} cmake-args|options|describe", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
