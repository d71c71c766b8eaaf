"""Exact token counts from a GGUF vocabulary, for the prompt renderer.

Wraps a loaded `llama_cpp.Llama`: the embedded engine's own model, or a
`vocab_only` load of any GGUF (a few tens of ms, no weights) so HTTP backends
can count tokens with their model's vocabulary. Tokenizing only reads the
vocabulary, never the context, so it is safe from any thread while the engine
generates on its worker (ctypes releases the GIL for the call).
"""

from __future__ import annotations

import atexit
import ctypes
import functools
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from lowentropy.models.errors import BackendConfigError

if TYPE_CHECKING:
    from llama_cpp import Llama

_SPECIAL_ATTRS = 8 | 16  # LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_USER_DEFINED


class LlamaTokenizer:
    """`Tokenizer` (exact) over a llama.cpp vocabulary."""

    def __init__(self, llm: Llama) -> None:
        # Holding the Llama keeps its model (and vocabulary) alive.
        self._llm = llm
        # Memoised per token: every ctypes call in the token loop hands the GIL
        # back and forth with the event loop thread, so skip the repeats.
        self._pieces: dict[tuple[int, bool], bytes] = {}
        self._eog: dict[int, bool] = {}

    @classmethod
    def from_gguf(cls, path: str | Path) -> LlamaTokenizer:
        """The vocabulary of any GGUF file, loaded once per path."""
        return _vocab_tokenizer(str(Path(path).expanduser().resolve()))

    @property
    def exact(self) -> bool:
        return True

    def count(self, text: str) -> int:
        """Token count without materialising tokens: llama.cpp returns -count for a null buffer."""
        if not text:
            return 0
        import llama_cpp

        data = text.encode("utf-8")
        n = int(
            llama_cpp.llama_tokenize(self._llm._model.vocab, data, len(data), None, 0, False, True)
        )
        return -n if n < 0 else n

    def tokenize(self, text: str, *, add_bos: bool = False) -> list[int]:
        """Special-token text (e.g. `<|fim_prefix|>`) becomes its special token."""
        if not text and not add_bos:
            return []
        import ctypes

        import llama_cpp

        data = text.encode("utf-8")
        # At most one token per byte (+ BOS): one call, never the retry that
        # llama-cpp-python's tokenize makes when n_ctx_train is 0 (vocab-only loads).
        size = len(data) + 2
        buffer = (llama_cpp.llama_token * size)()
        n = llama_cpp.llama_tokenize(
            self._llm._model.vocab, data, len(data), buffer, size, add_bos, True
        )
        if n < 0:
            return list(self._llm.tokenize(data, add_bos=add_bos, special=True))
        return list(ctypes.cast(buffer, ctypes.POINTER(llama_cpp.llama_token))[:n])

    def piece(self, token: int, *, special: bool = False) -> bytes:
        """The bytes of one token; special tokens render empty unless `special`."""
        cached = self._pieces.get((token, special))
        if cached is not None:
            return cached
        import llama_cpp

        vocab = self._llm._model.vocab
        size = 64
        while True:
            buf = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_token_to_piece(vocab, token, buf, size, 0, special)
            if n >= 0:
                self._pieces[(token, special)] = piece = buf.raw[:n]
                return piece
            size = -n  # too small: llama.cpp returns minus the size it needs

    def detokenize(self, tokens: Iterable[int], *, special: bool = False) -> str:
        data = b"".join(self.piece(t, special=special) for t in tokens)
        return data.decode("utf-8", errors="replace")

    def is_eog(self, token: int) -> bool:
        """End of generation: EOS, EOT, `<|im_end|>` and the like."""
        eog = self._eog.get(token)
        if eog is None:
            import llama_cpp

            eog = self._eog[token] = bool(
                llama_cpp.llama_vocab_is_eog(self._llm._model.vocab, token)
            )
        return eog

    def special_token(self, text: str) -> int | None:
        """The id of `text` when the vocabulary has it as one special token."""
        import llama_cpp

        tokens = self.tokenize(text)
        if len(tokens) != 1:
            return None
        attr = int(llama_cpp.llama_vocab_get_attr(self._llm._model.vocab, tokens[0]))
        return tokens[0] if attr & _SPECIAL_ATTRS else None

    def special_tokens_present(self, candidates: Iterable[str]) -> frozenset[str]:
        return frozenset(c for c in candidates if self.special_token(c) is not None)


@functools.cache
def _vocab_tokenizer(path: str) -> LlamaTokenizer:
    from llama_cpp import Llama

    if not Path(path).is_file():
        raise BackendConfigError(f"tokenizer GGUF not found: {path}")
    try:
        # n_ctx: the smallest context llama.cpp accepts; vocab_only still makes one.
        llm = Llama(model_path=path, vocab_only=True, n_ctx=256, verbose=False)
    except ValueError as exc:  # llama_cpp's "Failed to load model from file"
        raise BackendConfigError(f"cannot read the vocabulary of {path}: {exc}") from exc
    # Free it before interpreter teardown: llama-cpp-python's __del__ fails noisily once
    # its C bindings are gone.
    atexit.register(llm.close)
    return LlamaTokenizer(llm)
