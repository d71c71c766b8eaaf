"""`lowentropy pool`: start one vLLM server per role model on this GPU machine.

Pure parts: `plan_servers` groups roles by model and assigns ports and GPU
memory shares, `build_command` renders a vLLM command line with the flags the
pool relies on (prefix caching everywhere, n-gram speculation for apply and
next edit), `config_block` prints the lowentropy settings that point at them.
The process helpers (`start_process`, `wait_ready`, `stop_process`) are shared
with the test suite, which starts a llama.cpp server the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Literal

import attrs
import httpx

from lowentropy.models.types import ROLES, Role

# n-gram lookup drafts from the prompt: apply and next edit copy most of their input.
NGRAM_SPECULATION: dict[str, object] = {
    "method": "ngram",
    "num_speculative_tokens": 8,
    "prompt_lookup_min": 2,
    "prompt_lookup_max": 4,
}
SPECULATIVE_ROLES: frozenset[Role] = frozenset({"apply", "nextEdit"})
# An embedding model needs a fraction of a generator's KV cache.
EMBED_WEIGHT = 0.25
INSTALL_HINT = "vLLM is not installed: pip install 'lowentropy[gpu]' (needs a CUDA GPU)"
ConfigFormat = Literal["toml", "json"]


@attrs.frozen(kw_only=True)
class ServeSpec:
    """One vLLM server and the roles it serves."""

    model: str
    roles: tuple[Role, ...]
    port: int
    host: str = "127.0.0.1"
    served_model_name: str = ""
    gpu: int = 0
    gpu_memory_utilization: float | None = None
    speculative: bool = False
    embedding: bool = False
    extra_args: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.served_model_name or self.model

    @property
    def root(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return self.root + "/v1"


def plan_servers(
    models: Mapping[Role, str],
    *,
    base_port: int = 8100,
    ports: Mapping[Role, int] | None = None,
    host: str = "127.0.0.1",
    gpus: int = 1,
    gpu_memory_utilization: float = 0.9,
    extra_args: Sequence[str] = (),
) -> list[ServeSpec]:
    """Group roles by model (one server each), assign ports, GPUs and memory shares.

    Roles naming the same model share a server; the embedding role always gets
    its own (a pooling runner cannot generate). Servers are spread over `gpus`
    round-robin and split `gpu_memory_utilization` of each GPU by weight.
    """
    ports = dict(ports or {})
    groups: dict[tuple[str, bool], list[Role]] = {}
    for role in ROLES:
        model = models.get(role)
        if model:
            groups.setdefault((model, role == "embed"), []).append(role)
    taken = set(ports.values())
    next_port = base_port
    drafts: list[ServeSpec] = []
    for index, ((model, embedding), roles) in enumerate(groups.items()):
        port = next((ports[r] for r in roles if r in ports), None)
        if port is None:
            while next_port in taken:
                next_port += 1
            port = next_port
            taken.add(port)
        drafts.append(
            ServeSpec(
                model=model,
                roles=tuple(roles),
                port=port,
                host=host,
                served_model_name=model,
                gpu=index % max(1, gpus),
                speculative=any(r in SPECULATIVE_ROLES for r in roles),
                embedding=embedding,
                extra_args=tuple(extra_args),
            )
        )
    return [
        attrs.evolve(s, gpu_memory_utilization=_share(s, drafts, gpu_memory_utilization))
        for s in drafts
    ]


def _share(spec: ServeSpec, specs: Sequence[ServeSpec], total: float) -> float:
    def weight(s: ServeSpec) -> float:
        return EMBED_WEIGHT if s.embedding else 1.0

    same_gpu = [s for s in specs if s.gpu == spec.gpu]
    share = total * weight(spec) / sum(weight(s) for s in same_gpu)
    return int(share * 100) / 100  # round down: the shares must not exceed the total


def vllm_executable() -> str:
    """The `vllm` script beside this interpreter, else the one on PATH."""
    beside = Path(sys.executable).with_name("vllm")
    if beside.exists():
        return str(beside)
    return shutil.which("vllm") or "vllm"


def build_command(spec: ServeSpec, *, vllm: str = "vllm") -> list[str]:
    cmd = [vllm, "serve", spec.model, "--host", spec.host, "--port", str(spec.port)]
    cmd += ["--served-model-name", spec.name]
    if spec.embedding:
        # Encoder embedders attend both ways: there is no prefix KV to reuse.
        cmd += ["--runner", "pooling"]
    else:
        cmd.append("--enable-prefix-caching")
    if spec.speculative:
        cmd += ["--speculative-config", json.dumps(NGRAM_SPECULATION, separators=(",", ":"))]
    if spec.gpu_memory_utilization is not None:
        cmd += ["--gpu-memory-utilization", f"{spec.gpu_memory_utilization:.2f}"]
    cmd += list(spec.extra_args)
    return cmd


def server_env(spec: ServeSpec, gpus: int) -> dict[str, str]:
    """Environment additions for one server (its GPU when there are several)."""
    return {"CUDA_VISIBLE_DEVICES": str(spec.gpu)} if gpus > 1 else {}


def config_block(specs: Sequence[ServeSpec], fmt: ConfigFormat = "toml") -> str:
    """The lowentropy settings that send each role to its server.

    TOML for `lowentropy.toml` (one table per role), JSON for an editor's
    `initializationOptions` (under "lowentropy").
    """
    by_role = {role: spec for spec in specs for role in spec.roles}
    ordered = [(role, by_role[role]) for role in ROLES if role in by_role]
    if fmt == "json":
        tables = {
            role: {"model": s.name, "endpoints": [{"url": s.url, "model": s.name}]}
            for role, s in ordered
        }
        return json.dumps({"lowentropy": tables}, indent=2) + "\n"
    lines = [
        "# lowentropy.toml: generated by `lowentropy pool`; endpoints count in your user config"
        " (~/.config/lowentropy/config.toml) or a workspace you trust there (SECURITY.md)"
    ]
    for role, s in ordered:
        name, url = json.dumps(s.name), json.dumps(s.url)  # JSON strings are TOML strings
        lines += [
            "",
            f"[{role}]",
            f"model = {name}",
            f"endpoints = [{{ url = {url}, model = {name} }}]",
        ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- processes


class LaunchError(RuntimeError):
    pass


@attrs.define(kw_only=True)
class ManagedProcess:
    name: str
    command: list[str]
    root: str  # readiness is GET {root}/v1/models
    log_path: Path
    proc: subprocess.Popen[bytes]


def start_process(
    name: str,
    command: Sequence[str],
    root: str,
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
) -> ManagedProcess:
    """Start `command` in its own process group, output to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    with open(log_path, "wb") as log:
        # Own session: a terminal Ctrl-C reaches us, and we stop the servers in order.
        proc = subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            start_new_session=True,
        )
    return ManagedProcess(name=name, command=list(command), root=root, log_path=log_path, proc=proc)


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_ready(
    mp: ManagedProcess, timeout: float, *, poll: float = 0.25, path: str = "/v1/models"
) -> float:
    """Poll GET `path` until 200; returns seconds waited. Raises LaunchError."""
    start = time.monotonic()
    with httpx.Client(timeout=httpx.Timeout(2.0)) as client:
        while True:
            code = mp.proc.poll()
            if code is not None:
                raise LaunchError(
                    f"{mp.name} exited with {code} before answering; log {mp.log_path}:\n"
                    + log_tail(mp.log_path)
                )
            with contextlib.suppress(httpx.HTTPError):
                if client.get(mp.root + path).status_code == 200:
                    return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise LaunchError(
                    f"{mp.name} did not answer {mp.root}{path} within {timeout:.0f} s; "
                    f"log {mp.log_path}:\n" + log_tail(mp.log_path)
                )
            time.sleep(poll)


def stop_process(mp: ManagedProcess, *, grace: float = 15.0) -> None:
    """SIGTERM the process group (vLLM has worker children), SIGKILL after `grace`."""
    if mp.proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(mp.proc.pid, signal.SIGTERM)
    try:
        mp.proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(mp.proc.pid, signal.SIGKILL)
        mp.proc.wait(timeout=5)


# ---------------------------------------------------------------- the CLI


def _flag(role: Role) -> str:
    return "--" + "".join("-" + c.lower() if c.isupper() else c for c in role)


def add_pool_arguments(parser: argparse.ArgumentParser) -> None:
    """The `lowentropy pool` options (the CLI module owns the parser)."""
    for role in ROLES:
        parser.add_argument(_flag(role), dest=role, metavar="MODEL", help=f"model for {role}")
    parser.add_argument(
        "--port", action="append", default=[], metavar="ROLE=PORT", help="fix a role's port"
    )
    parser.add_argument("--base-port", type=int, default=8100)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--gpus", type=int, default=1, help="spread servers over this many GPUs")
    parser.add_argument(
        "--gpu-memory-utilization", type=float, default=0.9, help="total share of each GPU"
    )
    parser.add_argument(
        "--vllm-arg", action="append", default=[], metavar="ARG", help="extra vLLM argument"
    )
    parser.add_argument("--format", choices=("toml", "json"), default="toml")
    parser.add_argument("--startup-timeout", type=float, default=900.0)
    parser.add_argument("--log-dir", type=Path, default=None)
    parser.add_argument("--dry-run", action="store_true", help="print the commands and config")


def parse_ports(items: Sequence[str]) -> dict[Role, int]:
    ports: dict[Role, int] = {}
    for item in items:
        role, _, port = item.partition("=")
        if role not in ROLES or not port.isdigit():
            raise ValueError(f"--port expects ROLE=PORT with ROLE one of {', '.join(ROLES)}")
        ports[role] = int(port)
    return ports


def specs_from_args(args: argparse.Namespace) -> list[ServeSpec]:
    models: dict[Role, str] = {r: getattr(args, r) for r in ROLES if getattr(args, r, None)}
    extra = [a for arg in args.vllm_arg for a in shlex.split(arg)]
    return plan_servers(
        models,
        base_port=args.base_port,
        ports=parse_ports(args.port),
        host=args.host,
        gpus=args.gpus,
        gpu_memory_utilization=args.gpu_memory_utilization,
        extra_args=extra,
    )


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_pool(args: argparse.Namespace) -> int:
    """Start the servers, print the config block, wait for Ctrl-C, stop them. Exit code."""
    try:
        specs = specs_from_args(args)
    except ValueError as exc:
        print(f"lowentropy pool: {exc}", file=sys.stderr)
        return 2
    if not specs:
        flags = ", ".join(_flag(r) for r in ROLES)
        print(f"lowentropy pool: name a model for at least one role ({flags})", file=sys.stderr)
        return 2
    vllm = vllm_executable()
    commands = [(s, build_command(s, vllm=vllm), server_env(s, args.gpus)) for s in specs]
    if args.dry_run:
        for spec, cmd, env in commands:
            prefix = "".join(f"{k}={v} " for k, v in env.items())
            print(f"# {', '.join(spec.roles)}\n{prefix}{shlex.join(cmd)}")
        print()
        print(config_block(specs, args.format), end="")
        return 0
    if importlib.util.find_spec("vllm") is None:
        print(f"lowentropy pool: {INSTALL_HINT}", file=sys.stderr)
        return 2
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="lowentropy-pool-"))
    running: list[ManagedProcess] = []
    with _sigterm_as_interrupt():
        try:
            for spec, cmd, env in commands:
                name = f"vllm[{','.join(spec.roles)}]"
                log_path = log_dir / f"{'-'.join(spec.roles)}.log"
                print(f"starting {name} on {spec.url} (log {log_path})", file=sys.stderr)
                running.append(start_process(name, cmd, spec.root, log_path, env=env))
            for mp in running:
                waited = wait_ready(mp, args.startup_timeout)
                print(f"{mp.name} ready after {waited:.0f} s", file=sys.stderr)
            print(config_block(specs, args.format), end="", flush=True)
            print("serving; Ctrl-C stops the pool", file=sys.stderr)
            while True:
                for mp in running:
                    if mp.proc.poll() is not None:
                        print(
                            f"{mp.name} exited with {mp.proc.returncode}:\n{log_tail(mp.log_path)}",
                            file=sys.stderr,
                        )
                        return 1
                time.sleep(1.0)
        except LaunchError as exc:
            print(f"lowentropy pool: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("stopping the pool", file=sys.stderr)
            return 0
        finally:
            for mp in running:
                stop_process(mp)
