"""Greedy decoding on our own llama.cpp batches, speculatively when a drafter is given.

A verify pass decodes the pending token and a draft of the prediction together
(`batch_decoder.py`), keeps the agreeing prefix plus the model's own token at the first
disagreement, and drops the rest from the KV cache (`drafting.py` proposes the drafts).
Runs on the model's worker thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING

from lowentropy.models.batch_decoder import BatchDecoder
from lowentropy.models.drafting import SPEC_MAX_DRAFT, Drafter, draft_length
from lowentropy.models.engine_jobs import EngineStats, GenerationCancelled, GenerationStats
from lowentropy.models.llama_tokenizer import LlamaTokenizer
from lowentropy.models.threads import usable_cores

if TYPE_CHECKING:
    from llama_cpp import Llama

__all__ = ["Greedy"]


class Greedy:
    """Greedy decoding for one loaded model; its batch decoder is made at first use."""

    def __init__(self, tokenizer: LlamaTokenizer, stats: EngineStats, n_ctx: int) -> None:
        self.tokenizer = tokenizer
        self.stats = stats
        self.n_ctx = n_ctx
        self._decoder: BatchDecoder | None = None  # created on the worker at first use

    def close(self) -> None:
        if self._decoder is not None:
            self._decoder.close()
            self._decoder = None

    def tokens(
        self,
        llm: Llama,
        cancel: threading.Event,
        limit: int,
        drafter: Drafter | None,
        gen: GenerationStats,
        flush: Callable[[], None] | None = None,
    ) -> Generator[int, None, None]:
        """Greedy decoding after a prefill; with a drafter, verify drafts in batches.
        `flush` is called before each forward pass, so what was yielded so far goes out.

        Invariant at every yield: the KV cache and `llm.input_ids[:llm.n_tokens]`
        hold exactly the prompt and the tokens yielded before the current one,
        so a consumer may stop at any token and the next prompt reuses the cache.
        """
        stats = self.stats
        dec = self._decoder
        if dec is None:
            dec = self._decoder = BatchDecoder(llm, 1 + SPEC_MAX_DRAFT, usable_cores())
        # Our decodes leave logits that need not belong to the last cached token.
        llm._requires_eval = True
        n_past = int(llm.n_tokens)
        pending = dec.last_argmax()
        produced = 0
        while True:
            if cancel.is_set():
                raise GenerationCancelled
            if self.tokenizer.is_eog(pending):
                return
            yield pending
            produced += 1
            if drafter is not None:
                drafter.push(pending)
            # Room: tokens still allowed after `pending`, and the context's end.
            room = min(limit - produced, self.n_ctx - n_past - 1)
            if room <= 0:
                return
            draft: list[int] = []
            if drafter is not None:
                draft = drafter.propose(draft_length(drafter.evidence, room, drafter.threshold))
            if cancel.is_set():
                raise GenerationCancelled
            batch = [pending, *draft]
            if flush is not None:
                flush()
            out = dec.decode(batch, n_past)
            llm.input_ids[n_past : n_past + len(batch)] = batch
            accepted = 0
            while accepted < len(draft) and out[accepted] == draft[accepted]:
                accepted += 1
            n_past += 1 + accepted
            llm.n_tokens = n_past
            if accepted < len(draft):
                dec.keep(n_past)
            if drafter is not None:
                drafter.verified(len(draft), accepted)
            gen.forward_passes += 1
            stats.forward_passes += 1
            gen.draft_tokens += len(draft)
            stats.draft_tokens += len(draft)
            gen.accepted_draft_tokens += accepted
            stats.accepted_draft_tokens += accepted
            for token in draft[:accepted]:
                if cancel.is_set():
                    raise GenerationCancelled
                if self.tokenizer.is_eog(token):  # a prediction may spell a special token
                    return
                yield token
                produced += 1
                assert drafter is not None
                drafter.push(token)
            pending = out[accepted]
