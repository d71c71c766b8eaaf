"""The `lowentropy` command: serve, complete, apply, index, search, ask, demo, doctor, models, pool."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import BinaryIO

from .app import __version__


def _configure_logging(level: str, log_file: str | None) -> None:
    handlers: list[logging.Handler] = []
    if log_file:
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    else:
        # stdout carries LSP in `serve`: logs go to stderr.
        handlers.append(logging.StreamHandler(sys.stderr))
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    if level.upper() != "DEBUG":
        # pygls logs every message it sends at INFO; editors file stderr lines as errors.
        logging.getLogger("pygls").setLevel(logging.WARNING)


def parse_host_port(value: str) -> tuple[str, int]:
    """`PORT` or `HOST:PORT`; the host defaults to loopback so nothing listens on the network unasked."""
    host, _, port = value.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected [HOST:]PORT, got {value!r}") from None
    if not 0 < number < 65536:
        raise argparse.ArgumentTypeError(f"port out of range: {number}")
    return (host.strip("[]") or "127.0.0.1"), number


def parse_location(value: str) -> tuple[Path, int, int]:
    """`FILE:LINE:COL`, 1-based like compiler messages."""
    try:
        path, line, col = value.rsplit(":", 2)
        return Path(path), int(line), int(col)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FILE:LINE:COL, got {value!r}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    from .app import create_server

    # The engine's worker thread runs Python between tokens; with the default 5 ms
    # switch interval the event loop can wait that long for the GIL on every answer.
    sys.setswitchinterval(0.0005)
    server = create_server()
    if args.tcp:
        from .tcp import serve_tcp

        host, port = args.tcp
        serve_tcp(server, host, port, token_file=args.token_file)
    else:
        stdin, stdout = _protocol_streams()
        server.start_io(stdin, stdout)
    _exit_now(getattr(server, "exit_code", 0))
    return 0


def _exit_now(code: int) -> None:
    """End the process without C++ static destructors: a native thread still running (the
    ONNX export of the query encoder, started by a search) made them abort the server on
    exit ("terminate called without an active exception", status -6)."""
    logging.shutdown()
    sys.stderr.flush()
    os._exit(code)


def _protocol_streams() -> tuple[BinaryIO, BinaryIO]:
    """Stdio for LSP only: anything else that writes to fd 1 (llama.cpp's C code prints
    there while loading a model) would corrupt the JSON-RPC stream. The protocol keeps a
    private duplicate of fd 1, and fd 1 itself now points at stderr."""
    sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    return sys.stdin.buffer, os.fdopen(protocol_fd, "wb")


def cmd_complete(args: argparse.Namespace) -> int:
    from .inprocess import complete_at

    path, line, col = args.location
    if not path.is_file():
        print(f"lowentropy: no such file: {path}", file=sys.stderr)
        return 2
    lines = path.read_text(encoding="utf-8").split("\n")
    if not 1 <= line <= len(lines):
        print(f"lowentropy: line {line} is outside {path} (1..{len(lines)})", file=sys.stderr)
        return 2
    suggestion = asyncio.run(complete_at(path, line - 1, col - 1, root=args.root))
    print(suggestion)
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    from .apply.__main__ import run

    return run(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo()


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import run_doctor

    return asyncio.run(run_doctor(args.root))


def cmd_pool(args: argparse.Namespace) -> int:
    from lowentropy.models.vllm_launcher import run_pool

    return run_pool(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lowentropy", description=__doc__)
    parser.add_argument("--version", action="version", version=f"lowentropy {__version__}")
    parser.add_argument("--log-file", help="write logs here instead of stderr")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the language server (stdio by default)")
    serve.add_argument(
        "--tcp",
        type=parse_host_port,
        metavar="[HOST:]PORT",
        help="listen on TCP (host defaults to 127.0.0.1): one session, opened with the token "
        "written to --token-file (see SECURITY.md)",
    )
    serve.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help="where --tcp writes its session token, mode 0600 (default: "
        "$XDG_RUNTIME_DIR/lowentropy/tcp-PORT.token)",
    )
    serve.add_argument(
        "--stdio",
        action="store_true",
        help="stdio transport (the default; for clients that pass it)",
    )
    serve.set_defaults(func=cmd_serve)

    complete = sub.add_parser(
        "complete", help="print the Tab suggestion at FILE:LINE:COL (1-based)"
    )
    complete.add_argument("location", type=parse_location, metavar="FILE:LINE:COL")
    complete.add_argument(
        "--root", type=Path, default=None, help="workspace root (default: the file's folder)"
    )
    complete.set_defaults(func=cmd_complete)

    from .apply.__main__ import add_arguments as add_apply_arguments

    apply = sub.add_parser(
        "apply",
        help="apply a chat answer (stdin: prose with a fenced block, or a sketch) to FILE: "
        "print the diff; --write writes it",
    )
    add_apply_arguments(apply)
    apply.set_defaults(func=cmd_apply)

    demo = sub.add_parser(
        "demo", help="run the real server on a sample file and show what it suggests"
    )
    demo.set_defaults(func=cmd_demo)

    doctor = sub.add_parser(
        "doctor", help="show the configuration and how fast each backend answers"
    )
    doctor.add_argument(
        "--root", type=Path, default=Path.cwd(), help="workspace root with lowentropy.toml"
    )
    doctor.set_defaults(func=cmd_doctor)

    from .codebase_cli import add_codebase_commands
    from .models_cli import add_models_command

    add_codebase_commands(sub)
    add_models_command(sub)

    pool = sub.add_parser("pool", help="start vLLM servers for the roles (needs the gpu extra)")
    try:
        from lowentropy.models.vllm_launcher import add_pool_arguments

        add_pool_arguments(pool)
    except ImportError:  # pragma: no cover
        pass
    pool.set_defaults(func=cmd_pool)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet = args.command in {"demo", "apply", "index", "search", "ask"} and args.log_level == "INFO"
    _configure_logging("WARNING" if quiet else args.log_level, args.log_file)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
