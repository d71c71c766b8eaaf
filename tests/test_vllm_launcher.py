"""`lowentropy pool`: vLLM command lines, the config block, and the process helpers.

No GPU here: command building and the config block are checked as data, the
process helpers on real short-lived processes (the `llama_server` fixture uses
them too).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import sys
import time
import tomllib
from pathlib import Path

import pytest

from lowentropy.models.vllm_launcher import (
    INSTALL_HINT,
    NGRAM_SPECULATION,
    LaunchError,
    add_pool_arguments,
    build_command,
    config_block,
    plan_servers,
    run_pool,
    server_env,
    start_process,
    stop_process,
    wait_ready,
)

MODELS = {
    "tab": "Qwen/Qwen2.5-Coder-1.5B",
    "nextEdit": "zed-industries/zeta",
    "apply": "Kortix/FastApply-1.5B-v1.0",
    "chat": "Qwen/Qwen2.5-Coder-7B-Instruct",
    "embed": "nomic-ai/nomic-embed-text-v1.5",
}


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_pool_arguments(parser)
    return parser.parse_args(list(argv))


def flag_value(cmd: list[str], flag: str) -> str | None:
    return cmd[cmd.index(flag) + 1] if flag in cmd else None


def test_one_server_per_model_with_the_pool_flags() -> None:
    specs = plan_servers(MODELS, base_port=8100)  # type: ignore[arg-type]
    assert [s.roles for s in specs] == [("tab",), ("nextEdit",), ("apply",), ("chat",), ("embed",)]
    assert [s.port for s in specs] == [8100, 8101, 8102, 8103, 8104]
    by_role = {s.roles[0]: build_command(s) for s in specs}
    for role, cmd in by_role.items():
        assert cmd[:3] == ["vllm", "serve", MODELS[role]]
        assert flag_value(cmd, "--host") == "127.0.0.1"
        assert flag_value(cmd, "--served-model-name") == MODELS[role]
    for role in ("tab", "nextEdit", "apply", "chat"):
        assert "--enable-prefix-caching" in by_role[role]
    for role in ("nextEdit", "apply"):
        spec = flag_value(by_role[role], "--speculative-config")
        assert spec is not None and json.loads(spec) == NGRAM_SPECULATION
        assert json.loads(spec)["method"] == "ngram"
    for role in ("tab", "chat", "embed"):
        assert "--speculative-config" not in by_role[role]
    assert flag_value(by_role["embed"], "--runner") == "pooling"
    # several servers on one GPU split its memory; the embedder takes a small share
    shares = [s.gpu_memory_utilization for s in specs]
    assert all(x is not None for x in shares)
    assert sum(x for x in shares if x) <= 0.9
    assert shares[-1] is not None and shares[0] is not None and shares[-1] < shares[0]
    assert flag_value(by_role["tab"], "--gpu-memory-utilization") == f"{shares[0]:.2f}"


def test_roles_sharing_a_model_share_a_server() -> None:
    specs = plan_servers(
        {"nextEdit": "m", "apply": "m", "tab": "m", "embed": "e"},
        ports={"apply": 9000},
        gpu_memory_utilization=0.8,
    )
    assert [(s.roles, s.port) for s in specs] == [
        (("tab", "nextEdit", "apply"), 9000),
        (("embed",), 8100),
    ]
    assert specs[0].speculative and "--speculative-config" in build_command(specs[0])
    assert specs[0].gpu_memory_utilization == 0.64  # 0.8 * 1 / 1.25


def test_servers_spread_over_gpus() -> None:
    specs = plan_servers({"tab": "a", "chat": "b", "apply": "c"}, gpus=2)
    assert [s.gpu for s in specs] == [0, 1, 0]
    assert [s.gpu_memory_utilization for s in specs] == [0.45, 0.9, 0.45]
    assert server_env(specs[1], gpus=2) == {"CUDA_VISIBLE_DEVICES": "1"}
    assert server_env(specs[1], gpus=1) == {}


def test_config_block_toml_and_json() -> None:
    specs = plan_servers({"tab": "m", "apply": "m", "chat": 'q"uoted'}, base_port=8200)
    parsed = tomllib.loads(config_block(specs, "toml"))
    assert list(parsed) == ["tab", "apply", "chat"]
    assert parsed["tab"] == {
        "model": "m",
        "endpoints": [{"url": "http://127.0.0.1:8200/v1", "model": "m"}],
    }
    assert parsed["apply"]["endpoints"] == parsed["tab"]["endpoints"]
    assert parsed["chat"]["model"] == 'q"uoted'
    as_json = json.loads(config_block(specs, "json"))["lowentropy"]
    assert as_json == parsed


def test_dry_run_prints_commands_and_config(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("--tab", "m1", "--next-edit", "m2", "--port", "nextEdit=9100", "--dry-run",
                 "--vllm-arg", "--max-model-len 8192")  # fmt: skip
    assert run_pool(args) == 0
    out = capsys.readouterr().out
    commands = [shlex.split(line) for line in out.splitlines() if " serve " in line]
    assert len(commands) == 2
    assert commands[1][2] == "m2" and flag_value(commands[1], "--port") == "9100"
    assert commands[1][-2:] == ["--max-model-len", "8192"]
    assert json.loads(flag_value(commands[1], "--speculative-config") or "") == NGRAM_SPECULATION
    config = tomllib.loads(out[out.index("# lowentropy.toml") :])
    assert config["nextEdit"]["endpoints"][0]["url"] == "http://127.0.0.1:9100/v1"


def test_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_pool(parse()) == 2
    assert "--next-edit" in capsys.readouterr().err
    assert run_pool(parse("--tab", "m", "--port", "bogus=1")) == 2
    assert "ROLE=PORT" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")
def test_missing_vllm_points_at_the_gpu_extra(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_pool(parse("--tab", "m")) == 2
    err = capsys.readouterr().err
    assert INSTALL_HINT in err and "pip install 'lowentropy[gpu]'" in err


def test_wait_ready_reports_an_early_exit(tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", "import sys; print('no GPU found'); sys.exit(3)"]
    mp = start_process("dies", cmd, "http://127.0.0.1:9", tmp_path / "dies.log")
    with pytest.raises(LaunchError, match="exited with 3") as err:
        wait_ready(mp, timeout=30)
    assert "no GPU found" in str(err.value)


def test_wait_ready_times_out_and_stop_ends_the_group(tmp_path: Path) -> None:
    # The child spawns a grandchild (as vLLM spawns workers); stopping the group ends both.
    pid_file = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time;"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid));"
        "time.sleep(60)"
    )
    cmd = [sys.executable, "-c", script]
    mp = start_process("sleeper", cmd, "http://127.0.0.1:9", tmp_path / "s.log")
    with pytest.raises(LaunchError, match="did not answer"):
        wait_ready(mp, timeout=1.0, poll=0.1)
    deadline = time.monotonic() + 10
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchild = int(pid_file.read_text())
    stop_process(mp, grace=5)
    assert mp.proc.returncode is not None
    assert not alive(grandchild)


def alive(pid: int) -> bool:
    """Running and not a zombie waiting for its (re)parent to reap it."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        if state in ("Z", "X"):
            return False
        time.sleep(0.05)
    return True
