"""The installed llama.cpp runs on this CPU, was built the portable way, and a build that
could crash the server is refused with a clear error instead.

A `-march=native` build on an AVX-512 + AMX Xeon segfaults in ggml's AMX matmul on the
first decode (ggml-org/llama.cpp#20824): `test_installed_build_is_portable` fails loudly on
any machine whose build was not made by scripts/setup.sh with explicit flags.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lowentropy.models import cpu_features, llama_build
from lowentropy.models.cpu_features import (
    chosen_options,
    cmake_args,
    compiled_features,
    expected_features,
    missing_on_cpu,
    parse_system_info,
)
from lowentropy.models.embedded import EmbeddedEngine
from lowentropy.models.llama_build import BuildReport, LlamaBuildError, build_report
from lowentropy.models.packaged import QWEN_CODER_05B, model_path

ZEN4 = "fpu sse sse2 pni ssse3 fma sse4_1 sse4_2 avx f16c bmi1 avx2 bmi2 avx512f avx512dq avx512cd avx512bw avx512vl avx512vbmi avx512_vnni avx512_bf16 avx_vnni".split()  # noqa: E501
SAPPHIRE_RAPIDS = [*ZEN4, "amx_tile", "amx_int8", "amx_bf16"]
HASWELL = "fpu sse sse2 pni ssse3 fma sse4_1 sse4_2 avx f16c bmi1 avx2 bmi2".split()
NEHALEM = "fpu sse sse2 pni ssse3 sse4_1 sse4_2".split()


def test_decode_in_a_subprocess_exits_cleanly() -> None:
    """The default model evaluates and generates in a fresh process with the installed build."""
    path = model_path(QWEN_CODER_05B)
    script = (
        "import itertools, llama_cpp\n"
        f"llm = llama_cpp.Llama(model_path={str(path)!r}, n_ctx=256, verbose=False)\n"
        "tokens = llm.tokenize(b'def add(a, b):\\n    return')\n"
        "llm.eval(tokens)\n"
        "out = list(itertools.islice(llm.generate(tokens, temp=0.0, reset=False), 4))\n"
        "print('ok', len(tokens), len(out))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.startswith("ok ") and done.stdout.split()[-1] == "4"


def test_installed_build_is_portable() -> None:
    """Built by scripts/setup.sh with GGML_NATIVE=OFF and explicit flags, AMX off, unchanged
    since; what it reports compiled in is exactly what those flags give, all of which this
    CPU runs."""
    report = build_report()
    assert not report.problems, report.problems
    stamp = report.stamp
    assert stamp is not None, (
        "llama-cpp-python was not installed by scripts/setup.sh (no build stamp): it may be a "
        f"-march=native build that crashes on other CPUs. Fix: {llama_build.REBUILD}"
    )
    assert report.stamp_matches, "the installed CPU backend is not the one setup.sh built"
    args = stamp["cmake_args"]
    assert "-DGGML_NATIVE=OFF" in args
    for amx in cpu_features.AMX_OPTIONS:
        assert f"-D{amx}=OFF" in args or cpu_features.kernel_grants_amx()
    assert report.compiled == expected_features(stamp["options"])
    assert not report.amx


@pytest.mark.skipif(shutil.which("objdump") is None, reason="needs binutils' objdump")
def test_no_amx_instruction_is_compiled_into_the_cpu_backend() -> None:
    """Not only the reported features: the machine code has no AMX tile instruction."""
    lib = llama_build.cpu_backend_file()
    assert lib is not None
    disassembly = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", str(lib)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    assert "vfmadd" in disassembly or "vpdp" in disassembly  # it is SIMD code at all
    for mnemonic in ("ldtilecfg", "tileloadd", "tdpbssd", "tdpbf16ps", "tilerelease"):
        assert mnemonic not in disassembly


def test_flags_follow_the_cpu_and_never_turn_amx_on_unasked() -> None:
    assert chosen_options("host", SAPPHIRE_RAPIDS, allow_amx=False) == chosen_options(
        "host", ZEN4, allow_amx=False
    )
    assert "GGML_AMX_INT8" not in chosen_options("host", SAPPHIRE_RAPIDS, allow_amx=False)
    # Asked for, AMX still needs the kernel's grant of the tile state.
    assert "GGML_AMX_INT8" not in chosen_options(
        "host", SAPPHIRE_RAPIDS, allow_amx=True, amx_granted=False
    )
    assert "GGML_AMX_INT8" in chosen_options(
        "host", SAPPHIRE_RAPIDS, allow_amx=True, amx_granted=True
    )
    haswell = chosen_options("host", HASWELL)
    assert "GGML_AVX2" in haswell and "GGML_AVX512" not in haswell
    args = cmake_args(haswell, x86=True)
    # Every option explicit: ggml turns AVX2/FMA/... on by default when not native.
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_AVX512=OFF" in args
    assert len(args) == 2 + len(cpu_features.GGML_OPTIONS)
    # A portable level needs its instructions on the building CPU.
    assert chosen_options("x86-64-v3", ZEN4) == list(cpu_features.LEVELS["x86-64-v3"])
    with pytest.raises(cpu_features.CpuFeatureError, match="GGML_AVX2"):
        chosen_options("x86-64-v3", NEHALEM)
    with pytest.raises(cpu_features.CpuFeatureError, match="valid"):
        chosen_options("x86-64-v9", ZEN4)


def test_system_info_is_read_and_compared_with_the_cpu() -> None:
    info = parse_system_info(
        "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
        "AVX512 = 1 | AVX512_VNNI = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | "
    )
    compiled = compiled_features(info)
    assert "AMX_INT8" in compiled and "LLAMAFILE" not in compiled
    assert missing_on_cpu(compiled, SAPPHIRE_RAPIDS) == []
    assert missing_on_cpu(compiled, HASWELL) == ["AMX_INT8", "AVX512", "AVX512_VNNI"]


def _report(**changes: object) -> BuildReport:
    base = {
        "system_info": "",
        "compiled": frozenset(),
        "cpu_supported": (),
        "missing": (),
        "amx": False,
        "probe_error": None,
        "stamp": None,
        "stamp_matches": False,
    }
    base.update(changes)
    return BuildReport(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("report", "reason"),
    [
        (_report(missing=("AVX512",)), "illegal instruction"),
        (_report(amx=True), "AMX"),
        (_report(probe_error="killed by SIGILL"), "SIGILL"),
    ],
)
def test_a_build_that_would_crash_is_refused_before_loading(
    monkeypatch: pytest.MonkeyPatch, report: BuildReport, reason: str
) -> None:
    monkeypatch.setattr(llama_build, "_checked", lambda *args: report)
    monkeypatch.delenv(cpu_features.AMX_ENV, raising=False)
    with pytest.raises(LlamaBuildError, match=reason) as info:
        EmbeddedEngine.shared("smollm2-135m", n_ctx=320)  # an n_ctx no other test loads
    assert "scripts/setup.sh" in str(info.value)


def test_the_probe_reports_a_crash_instead_of_crashing(tmp_path: Path) -> None:
    """A build that dies answering is a message, not a dead server."""
    text, error = llama_build.probe_system_info()
    assert error is None and "CPU :" in text  # the real build answers
    # Fault injection: an "interpreter" that really segfaults where the probe would run.
    fake = tmp_path / "python-that-segfaults"
    fake.write_text(f'#!/bin/sh\nexec {sys.executable} -c "import ctypes; ctypes.string_at(0)"\n')
    fake.chmod(0o755)
    text, error = llama_build.probe_system_info(python=str(fake), timeout=60)
    assert text == "" and error == "killed by SIGSEGV"
