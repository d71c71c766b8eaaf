"""The generator, tokenizer and prompt template for each role, built from settings.

No endpoints → the embedded llama.cpp engine (one load per process, shared by
every role that uses the same GGUF). Endpoints → a `Pool` of OpenAI-compatible
replicas. Built lazily and rebuilt only when the role's configuration changes.
"""

from __future__ import annotations

import asyncio
import logging

import attrs

from lowentropy.models.config import RoleConfig
from lowentropy.models.types import Generator, Role, Tokenizer
from lowentropy.prompts.fim import FimTemplate, get_template, guess_template
from lowentropy.prompts.renderer import Renderer

from .redaction import RedactingGenerator, RedactingTokenizer, unwrap_generator

log = logging.getLogger(__name__)


@attrs.define
class RoleBackend:
    config: RoleConfig
    generator: Generator
    tokenizer: Tokenizer
    template: FimTemplate
    # True when the tokenizer may do I/O (remote /tokenize): count off the event loop.
    blocking_tokenizer: bool
    # Long-lived, so per-line token counts are reused across keystrokes.
    renderer: Renderer = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.renderer = Renderer.for_tokenizer(self.tokenizer)


class Backends:
    def __init__(self) -> None:
        self._built: dict[Role, RoleBackend] = {}
        self._locks: dict[Role, asyncio.Lock] = {}

    async def get(self, role: Role, config: RoleConfig) -> RoleBackend:
        built = self._built.get(role)
        if built is not None and built.config == config:
            return built
        lock = self._locks.setdefault(role, asyncio.Lock())
        async with lock:
            built = self._built.get(role)
            if built is not None and built.config == config:
                return built
            fresh = await self._build(role, config)
            old, self._built[role] = self._built.get(role), fresh
            if (
                old is not None
                and unwrap_generator(old.generator) is not unwrap_generator(fresh.generator)
                and not self._in_use(old.generator)
            ):
                await old.generator.aclose()
            return fresh

    def _in_use(self, generator: Generator) -> bool:
        inner = unwrap_generator(generator)
        return any(unwrap_generator(b.generator) is inner for b in self._built.values())

    def loaded(self) -> dict[Role, RoleBackend]:
        return dict(self._built)

    async def _build(self, role: Role, config: RoleConfig) -> RoleBackend:
        """The role's backend; every prompt and token count it sees is masked (redaction.py)."""
        backend = await self._build_plain(role, config)
        backend.generator = RedactingGenerator(backend.generator)
        if backend.blocking_tokenizer:  # counts on the endpoint (/tokenize) send text too
            backend.tokenizer = RedactingTokenizer(backend.tokenizer)
            backend.renderer = Renderer.for_tokenizer(backend.tokenizer)
        return backend

    async def _build_plain(self, role: Role, config: RoleConfig) -> RoleBackend:
        # The apply role's `template` names its apply prompt format, not a FIM template.
        fim_name = None if role == "apply" else config.template
        if config.embedded:
            from lowentropy.models.embedded import EmbeddedEngine

            engine = await asyncio.to_thread(
                EmbeddedEngine.shared,
                config.model_path,
                n_ctx=config.n_ctx,
                n_threads=config.n_threads,
            )
            fim = engine.fim_tokens()
            template = (
                get_template(fim_name)
                if fim_name
                else guess_template(engine.name, lambda tok: tok in fim)
            )
            return RoleBackend(
                config=config,
                generator=engine,
                tokenizer=engine.tokenizer(),
                template=template,
                blocking_tokenizer=False,
            )
        from lowentropy.models.pool import Pool

        pool = Pool.from_config(config)
        model_name = config.model or (config.endpoints[0].model if config.endpoints else "")
        template = get_template(fim_name) if fim_name else guess_template(model_name, None)
        tokenizer = await asyncio.to_thread(pool.tokenizer)
        return RoleBackend(
            config=config,
            generator=pool,
            tokenizer=tokenizer,
            template=template,
            blocking_tokenizer=not config.tokenizer,
        )

    async def aclose(self) -> None:
        seen: set[int] = set()
        for backend in self._built.values():
            generator = unwrap_generator(backend.generator)
            if id(generator) not in seen:
                seen.add(id(generator))
                # The embedded engine is process-wide and outlives one server's settings.
                if not generator.capabilities.embedded:
                    await generator.aclose()
        self._built.clear()
