"""`lowentropy doctor`: what is configured, which backends answer, and how fast."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from lowentropy.models.config import RoleConfig
from lowentropy.models.errors import BackendError
from lowentropy.models.types import ROLES, CompletionRequest, Embedder

from .backends import Backends
from .settings import SettingsError, load_toml, resolve


async def run_doctor(root: Path) -> int:
    console = Console()
    try:
        settings = resolve(load_toml(root))
    except SettingsError as exc:
        console.print(f"[red]invalid configuration:[/] {exc}")
        return 2
    console.print(
        f"workspace: {root.resolve()}  (lowentropy.toml: {'yes' if (root / 'lowentropy.toml').is_file() else 'no'})"
    )
    table = Table("role", "backend", "model / endpoints", "template", "tokenizer", "check")
    backends = Backends()
    failures = 0
    for role in ROLES:
        config = settings.role(role)
        where = (
            ", ".join(e.url for e in config.endpoints)
            if config.endpoints
            else (config.model_path or "packaged SmolLM2-135M-Instruct")
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
            health = getattr(backend.generator, "health", None)
            if health is not None:
                states = await health()
                check += "; " + ", ".join(str(s) for s in states)
            check = f"loaded in {load_s:.2f}s; {check}"
            tokenizer = "exact" if backend.tokenizer.exact else "estimate (chars/4)"
            table.add_row(role, kind, where, backend.template.name, tokenizer, f"[green]{check}[/]")
        except (BackendError, OSError, ValueError) as exc:
            failures += 1
            table.add_row(role, kind, where, "-", "-", f"[red]{exc}[/]")
    console.print(table)
    await backends.aclose()
    return 1 if failures else 0


async def _probe(generator: object) -> str:
    req = CompletionRequest(prompt="def add(a, b):\n    return", max_tokens=8, temperature=0.0)
    started = time.perf_counter()
    first: float | None = None
    chunks = 0
    async for _ in generator.stream_completion(req):  # type: ignore[attr-defined]
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
