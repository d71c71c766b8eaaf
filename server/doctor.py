"""`lowentropy doctor`: what is configured, which backends answer, and how fast."""

from __future__ import annotations

import asyncio
import contextlib
import platform
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from lowentropy.models.config import RoleConfig
from lowentropy.models.cpu_features import kernel_grants_amx
from lowentropy.models.embedded import default_threads, usable_cores
from lowentropy.models.errors import BackendError
from lowentropy.models.llama_build import REBUILD, build_report
from lowentropy.models.packaged import default_model
from lowentropy.models.pool import Pool
from lowentropy.models.types import ROLES, CompletionRequest, Embedder, Generator

from .backends import Backends
from .redaction import unwrap_generator
from .settings import SettingsError, resolve
from .trust import settings_sources


async def run_doctor(root: Path) -> int:
    console = Console()
    try:
        sources = settings_sources(root)
        for warning in sources.warnings:
            console.print(f"[yellow]{warning}[/]")
        settings = resolve(*(d for d in (sources.user, sources.workspace) if d is not None))
    except SettingsError as exc:
        console.print(f"[red]invalid configuration:[/] {exc}")
        return 2
    console.print(
        f"workspace: {root.resolve()}  (lowentropy.toml: {'yes' if (root / 'lowentropy.toml').is_file() else 'no'})"
    )
    build_ok = await asyncio.to_thread(_report_build, console, settings.role("tab").n_threads)
    table = Table("role", "backend", "model / endpoints", "template", "tokenizer", "check")
    backends = Backends()
    failures = 0
    for role in ROLES:
        config = settings.role(role)
        where = (
            ", ".join(e.url for e in config.endpoints)
            if config.endpoints
            else (config.model_path or f"packaged {_default_title()}")
        )
        kind = "pool" if config.endpoints else "embedded"
        if role == "embed":
            embed_kind = kind if config.endpoints else "sentence-transformers"
            embed_where = where if config.endpoints else "packaged all-MiniLM-L6-v2"
            try:
                check = f"[green]{await _probe_embedder(config)}[/]"
            except Exception as exc:  # every failure is reported in the table, none is fatal
                failures += 1
                check = f"[red]{exc}[/]"
            table.add_row(role, embed_kind, embed_where, "-", "-", check)
            continue
        try:
            started = time.perf_counter()
            backend = await backends.get(role, config)
            load_s = time.perf_counter() - started
            check = await _probe(backend.generator)
            inner = unwrap_generator(backend.generator)
            if isinstance(inner, Pool):  # each replica's /v1/models
                states = await inner.health()
                check += "; " + ", ".join(str(s) for s in states)
            check = f"loaded in {load_s:.2f}s; {check}"
            tokenizer = "exact" if backend.tokenizer.exact else "estimate (chars/4)"
            table.add_row(role, kind, where, backend.template.name, tokenizer, f"[green]{check}[/]")
        except (BackendError, OSError, ValueError) as exc:
            failures += 1
            table.add_row(role, kind, where, "-", "-", f"[red]{exc}[/]")
    console.print(table)
    await backends.aclose()
    return 1 if failures or not build_ok else 0


def _default_title() -> str:
    model = default_model()
    return model.title if model is not None else "model at $LOWENTROPY_DEFAULT_MODEL"


def _report_build(console: Console, n_threads: int | None) -> bool:
    """The CPU, what the installed llama.cpp was compiled for, and whether that is safe here."""
    report = build_report()
    console.print(f"CPU: {platform.machine()}, {usable_cores()} usable cores")
    console.print(f"  instruction sets it supports: {' '.join(report.cpu_supported) or 'unknown'}")
    if report.system_info:
        console.print(
            f"  llama.cpp compiled for: {' '.join(sorted(report.compiled)) or 'baseline'}"
        )
    amx = "compiled in" if report.amx else "off"
    grant = "granted" if kernel_grants_amx() else "not granted"
    console.print(f"  AMX: {amx} (the kernel: {grant})")
    threads = n_threads or default_threads()
    console.print(f"  threads per model: {threads} ({'tab.nThreads' if n_threads else 'auto'})")
    stamp = report.stamp
    if stamp and report.stamp_matches:
        console.print(
            f"  build: portable, by scripts/setup.sh (level {stamp.get('level')}, GGML_NATIVE=OFF)"
        )
    elif stamp:
        console.print("  build: [yellow]changed since scripts/setup.sh built it[/]")
    else:
        console.print("  build: [yellow]not built by scripts/setup.sh (may be -march=native)[/]")
    for problem in report.problems:
        console.print(f"  [red]{problem}[/]")
    if report.problems or not report.portable:
        console.print(f"  fix: {REBUILD}")
    return not report.problems


async def _probe(generator: Generator) -> str:
    req = CompletionRequest(prompt="def add(a, b):\n    return", max_tokens=8, temperature=0.0)
    started = time.perf_counter()
    first: float | None = None
    chunks = 0
    async with contextlib.aclosing(generator.stream_completion(req)) as stream:
        async for _ in stream:
            if first is None:
                first = time.perf_counter() - started
            chunks += 1
    total = time.perf_counter() - started
    return f"first token {1000 * (first or total):.0f} ms, {chunks} chunks in {1000 * total:.0f} ms"


async def _probe_embedder(config: RoleConfig) -> str:
    from lowentropy.models.embeddings import OpenAIEmbedder, SentenceTransformerEmbedder

    started = time.perf_counter()
    embedder: Embedder
    if config.endpoints:
        endpoint = config.endpoints[0]
        embedder = OpenAIEmbedder(endpoint.url, model=endpoint.model)
    else:
        embedder = SentenceTransformerEmbedder()
    try:
        (vector,) = await embedder.embed(["def add(a, b):\n    return a + b"])
        elapsed = time.perf_counter() - started
        queries = ""
        if isinstance(embedder, SentenceTransformerEmbedder):
            await asyncio.to_thread(embedder.wait_for_onnx, 60.0)
            queries = f"; queries through {embedder.query_runtime()}"
    finally:
        await embedder.aclose()
    return f"{len(vector)} dimensions in {1000 * elapsed:.0f} ms (load included){queries}"
