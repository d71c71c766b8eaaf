"""Tab's engine: the suggestion for a resolved cursor (`tab_lsp.py` answers the requests).

Pipeline per request: answer from the suggestion cache when the user is typing
through a suggestion or accepted one we prefetched → else supersede the
document's older request → render the prompt (stable prefix first) → stream from
the role's backend, stopping at the block end → post-process. After answering,
prefetch what follows acceptance. Warm the backend's KV cache on open and after a
pause in typing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

import attrs
from lsprotocol import types

from lowentropy.models.errors import BackendError
from lowentropy.models.types import CompletionRequest
from lowentropy.prompts.tab import TabInputs, TabPrompt, render_tab_inputs
from lowentropy.retrieval.secrets import mask_secrets

from .documents import MAX_DOCUMENT_CHARS
from .postprocess import CursorContext, block_finished, heal_prompt, postprocess, unheal
from .redaction import mask
from .stats import TabStats
from .suggestion_cache import PendingPrefetch, SuggestionCache, snapshot
from .tab_lsp import Cursor, locate
from .tasks import Supersede, Superseded, TaskKeeper

if TYPE_CHECKING:
    from .app import LowEntropyServer
    from .backends import RoleBackend

log = logging.getLogger(__name__)


class TabEngine:
    """Per-server Tab state: the suggestion cache, in-flight requests, prefetches, warming."""

    def __init__(self, ls: LowEntropyServer) -> None:
        self.ls = ls
        self.cache = SuggestionCache()
        self.requests = Supersede("completion")
        self.warm_tasks: dict[str, asyncio.Task[None]] = {}
        self.late: dict[str, asyncio.Task[str]] = {}  # generations past their budget, per document
        self.background = TaskKeeper("tab")

    @property
    def stats(self) -> TabStats:
        return self.ls.tab_stats

    # ---- the request path ----------------------------------------------------------------

    async def suggest(
        self, cursor: Cursor, started: float | None = None, *, budgeted: bool = True
    ) -> str:
        """The suggestion for `cursor` ("" for none). Raises Superseded when a newer request wins.

        `started` is when the request reached the server (`time.perf_counter()`), so the
        timings include locating the cursor. `budgeted`: answer within
        `completion.budgetMs` or not at all (requests while typing); an explicit request
        (the user invoked completion) waits for its answer."""
        started = time.perf_counter() if started is None else started
        self.stats.requests += 1
        hit = self.cache.lookup(cursor.uri, cursor.text, cursor.offset)
        if hit is not None:
            rest, entry = hit
            if entry.prefetched and entry.anchor == cursor.offset:
                self.stats.prefetch_hits += 1
            else:
                self.stats.typed_through += 1
            self.stats.cached_ms.append((time.perf_counter() - started) * 1000)
            return rest

        try:
            with self.requests.latest(cursor.uri):
                late = self.late.pop(cursor.uri, None)
                if late is not None:
                    late.cancel()  # what it evaluated stays cached: this request goes on from there
                budget = self.ls.settings.completion.budget_ms / 1000 if budgeted else None
                deadline = None if budget is None else started + budget
                pending = self.cache.pending.get(cursor.uri)
                if pending is not None:
                    if pending.cursor == cursor.offset and pending.expected_text == cursor.text:
                        left = (
                            None if deadline is None else max(deadline - time.perf_counter(), 0.0)
                        )
                        try:
                            suggestion = await asyncio.wait_for(asyncio.shield(pending.task), left)
                        except TimeoutError:  # the prefetch runs on and caches what it finds
                            self.stats.over_budget += 1
                            return ""
                        self.stats.prefetch_hits += 1
                        self.stats.cached_ms.append((time.perf_counter() - started) * 1000)
                        return suggestion
                    pending.task.cancel()
                    self.cache.pending.pop(cursor.uri, None)
                suggestion, backend_ms = await self._generate(cursor, deadline)
        except Superseded:
            self.stats.superseded += 1
            raise
        except asyncio.CancelledError:
            self.stats.cancelled += 1
            raise
        self.stats.completed += 1
        total_ms = (time.perf_counter() - started) * 1000
        log.debug("tab suggest total_ms=%.2f backend_ms=%.2f", total_ms, backend_ms)
        self.stats.total_ms.append(total_ms)
        self.stats.overhead_ms.append(max(0.0, total_ms - backend_ms))
        if suggestion:
            self.cache.add(cursor.uri, snapshot(cursor.text, cursor.offset, suggestion))
            if self.ls.settings.completion.prefetch:
                self._start_prefetch(cursor, suggestion)
        else:
            self.stats.empty += 1
        return suggestion

    async def _backend(self) -> RoleBackend:
        return await self.ls.backends.get("tab", self.ls.settings.role("tab"))

    def _inputs(self, backend: RoleBackend, cursor: Cursor) -> TabInputs:
        return TabInputs(
            text=cursor.text,
            cursor_offset=cursor.offset,
            path=cursor.path,
            language=cursor.language,
            budget=self.ls.settings.completion.context_tokens,
            reserve_output=backend.config.max_tokens,
        )

    async def _render(self, backend: RoleBackend, cursor: Cursor) -> tuple[TabInputs, TabPrompt]:
        inputs = self._inputs(backend, cursor)

        def render() -> TabPrompt:
            return render_tab_inputs(
                inputs,
                template=backend.template,
                count=backend.tokenizer.count,
                renderer=backend.renderer,
            )

        if backend.blocking_tokenizer:
            return inputs, await asyncio.to_thread(render)
        return inputs, render()

    async def _generate(self, cursor: Cursor, deadline: float | None = None) -> tuple[str, float]:
        """Render, stream and post-process; returns the suggestion and the ms spent in the backend.

        With a `deadline` (`time.perf_counter()` seconds) a generation still running then is
        answered with "" and left to finish in the background: the prompt it was
        evaluating stays in the KV cache for the next keystroke, and its suggestion is
        kept for typing through (`_finish_late`)."""
        request_id = uuid.uuid4().hex[:8]
        tb = time.perf_counter()
        backend = await self._backend()
        t0 = time.perf_counter()
        inputs, prompt = await self._render(backend, cursor)
        render_ms = (time.perf_counter() - t0) * 1000
        role = backend.config
        text, healed = heal_prompt(prompt.prompt)
        req = CompletionRequest(
            prompt=text,
            max_tokens=role.max_tokens,
            temperature=role.temperature,
            stop=tuple(backend.template.stop),
            stable_prefix=prompt.stable_prefix[: len(text)],
        )
        self.stats.backend_calls += 1
        t1 = time.perf_counter()
        streaming = asyncio.create_task(self._stream(backend, req, cursor.ctx, healed, request_id))
        try:
            if deadline is None:
                suggestion = await streaming
            else:
                left = max(deadline - time.perf_counter(), 0.0)
                suggestion = await asyncio.wait_for(asyncio.shield(streaming), left)
        except TimeoutError:
            self.stats.over_budget += 1
            self._finish_late(cursor, streaming)
            log.debug("tab %s: over budget, finishing in the background", request_id)
            return "", (time.perf_counter() - t1) * 1000
        except asyncio.CancelledError:
            streaming.cancel()
            raise
        backend_ms = (time.perf_counter() - t1) * 1000
        log.debug(
            "tab %s get_backend_ms=%.2f render_ms=%.2f backend_ms=%.1f prompt_tokens=%d exact=%s chars=%d",
            request_id,
            (t0 - tb) * 1000,
            render_ms,
            backend_ms,
            prompt.tokens,
            prompt.exact,
            len(suggestion),
        )
        if self.ls.recorder.enabled:
            await asyncio.to_thread(self._record, inputs, prompt, backend.template)
        return suggestion, backend_ms

    def _record(self, inputs: TabInputs, prompt: TabPrompt, template: Any) -> None:
        """Record the prompt with secrets masked as sent (same length: offsets stay true)."""
        inputs = attrs.evolve(inputs, text=mask_secrets(inputs.text))
        prompt = attrs.evolve(
            prompt, prompt=mask(prompt.prompt), stable_prefix=mask(prompt.stable_prefix)
        )
        self.ls.recorder.record(inputs, prompt, template=template)

    async def _stream(
        self, backend: RoleBackend, req: CompletionRequest, ctx: CursorContext, healed: str,
        request_id: str,
    ) -> str:  # fmt: skip
        """Stream from the backend, stopping at the block end; the post-processed suggestion."""
        role = backend.config
        written = ""  # what the model wrote, the healed whitespace first
        raw = ""
        try:
            async with asyncio.timeout(role.timeouts.total + 1.0):
                async with contextlib.aclosing(backend.generator.stream_completion(req)) as stream:
                    async for delta in stream:
                        written += delta
                        fitted = unheal(written, healed)
                        if fitted is None:
                            break  # it continues differently from the typed whitespace
                        raw = fitted
                        if block_finished(raw, ctx):
                            break  # aclosing closes the HTTP stream / stops local generation now
        except BackendError as exc:
            self.stats.errors += 1
            log.warning("tab %s: backend failed: %s", request_id, exc.user_message)
            return ""
        except TimeoutError:
            self.stats.errors += 1
            log.warning("tab %s: backend timed out after %.1fs", request_id, role.timeouts.total)
            return ""
        if unheal(written, healed) is None:
            return ""
        return postprocess(raw, ctx)

    def _finish_late(self, cursor: Cursor, streaming: asyncio.Task[str]) -> None:
        """Let a generation that missed its budget run on; keep its suggestion if the user
        is still there to type through it. A newer request for the document cancels it."""
        old = self.late.pop(cursor.uri, None)
        if old is not None:
            old.cancel()
        self.late[cursor.uri] = streaming

        def done(task: asyncio.Task[str]) -> None:
            if self.late.get(cursor.uri) is task:
                del self.late[cursor.uri]
            if task.cancelled() or task.exception() is not None:
                return
            if suggestion := task.result():
                self.cache.add(cursor.uri, snapshot(cursor.text, cursor.offset, suggestion))
                self.stats.late_cached += 1

        streaming.add_done_callback(done)
        self.background.keep(streaming)

    # ---- prefetch --------------------------------------------------------------------------

    def _start_prefetch(self, cursor: Cursor, suggestion: str) -> None:
        expected = cursor.text[: cursor.offset] + suggestion + cursor.text[cursor.offset :]
        new_offset = cursor.offset + len(suggestion)
        old = self.cache.pending.pop(cursor.uri, None)
        if old is not None:
            old.task.cancel()

        async def run() -> str:
            line_start = expected.rfind("\n", 0, new_offset) + 1
            line_end = expected.find("\n", new_offset)
            line_text = expected[line_start : len(expected) if line_end == -1 else line_end]
            col = new_offset - line_start
            ctx = attrs.evolve(cursor.ctx, line_prefix=line_text[:col], line_suffix=line_text[col:])
            after = attrs.evolve(cursor, text=expected, offset=new_offset, ctx=ctx)
            self.stats.prefetches += 1
            try:
                result, _ = await self._generate(after)
            finally:
                self.stats.prefetches_done += 1
            if result:
                self.cache.add(cursor.uri, snapshot(expected, new_offset, result, prefetched=True))
            return result

        task = asyncio.create_task(run())
        self.cache.pending[cursor.uri] = PendingPrefetch(
            expected_text=expected, cursor=new_offset, task=task
        )
        self.background.keep(task)

    # ---- warming ---------------------------------------------------------------------------

    def schedule_warm(self, uri: str, delay: float) -> None:
        """Warm the backend for `uri` after `delay` seconds unless typing goes on."""
        if self.ls.settings.completion.warm_delay_ms < 0:
            return
        old = self.warm_tasks.pop(uri, None)
        if old is not None:
            old.cancel()
        task = asyncio.create_task(self._warm_after(uri, delay))
        self.warm_tasks[uri] = task
        self.background.keep(task)

    async def _warm_after(self, uri: str, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.requests.running(uri) or uri in self.cache.pending:
            return  # a real request is using the backend: never compete with it
        doc = self.ls.workspace.text_documents.get(uri)
        if doc is None:
            return
        text = doc.source
        if len(text) > MAX_DOCUMENT_CHARS:
            return
        state = self.ls.documents.get(uri)
        offset = min(state.last_edit_offset or 0, len(text))
        line_start = text.rfind("\n", 0, offset) + 1
        index = state.index(text)
        line, _ = index.position(line_start)
        cursor = locate(
            self.ls, types.TextDocumentIdentifier(uri=uri), types.Position(line=line, character=0)
        )
        if cursor is None:
            return
        backend = await self._backend()
        _, prompt = await self._render(backend, cursor)
        # The prompt at the start of the cursor line is the stable head of every
        # prompt while typing on that line (prefix formats); FIM formats warm their stable prefix.
        prefix = prompt.prompt if backend.template.name == "plain" else prompt.stable_prefix
        if not prefix:
            return
        try:
            await backend.generator.warm(prefix)
            self.stats.warmings += 1
        except BackendError as exc:
            log.info("warming %s failed: %s", uri, exc.user_message)

    def forget(self, uri: str) -> None:
        self.cache.forget(uri)
        task = self.warm_tasks.pop(uri, None)
        if task is not None:
            task.cancel()

    async def aclose(self) -> None:
        await self.background.aclose()
