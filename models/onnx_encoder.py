"""A query-sized fast path for a sentence-transformers model: the same network in ONNX Runtime.

A search query is a dozen tokens, where MiniLM spends ~10 ms in torch's eager
dispatch (a hundred small ops, each a trip through Python) against ~4 ms for
ONNX Runtime, which runs the whole graph natively. On full batches torch is as
fast or faster, so only small inputs take this path and the index keeps its
torch vectors; the two agree to ~1e-7, and every encoder is checked against
torch on probe texts before use.

The network is exported from the loaded model once per machine (~2 s) into the
user's cache directory, keyed by the weights and the versions that shape the
export; later processes only load the file (~0.3 s). Anything unexpected (a
model shape this does not know, onnxruntime missing, an export or a check that
fails) leaves the torch path in place and says why in the log.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["OnnxEncoder", "OnnxUnsupported", "build_onnx_encoder", "onnx_cache_dir"]

log = logging.getLogger(__name__)

OPSET = 17
# Largest difference allowed from torch's normalised vectors on the probes.
MAX_DIFFERENCE = 1e-4
_PROBES = [
    "parse an Email Address",
    "  surrounding whitespace\n",
    "def add(a, b):\n    return a + b",
    "where is the config file read " * 40,  # longer than max_seq_length: truncation
]


class OnnxUnsupported(Exception):
    """This model or machine cannot take the ONNX path (the reason is the message)."""


def onnx_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lowentropy" / "onnx"


def _parts(model: Any) -> tuple[Any, Any]:
    """The Transformer module and its Hugging Face network, if the rest is mean pooling."""
    modules = list(model)
    names = [type(m).__name__ for m in modules]
    if len(modules) < 2 or names[0] != "Transformer" or names[1] != "Pooling":
        raise OnnxUnsupported(f"modules {names} (need Transformer, Pooling[, Normalize])")
    if any(n != "Normalize" for n in names[2:]):
        raise OnnxUnsupported(f"modules {names} (need Transformer, Pooling[, Normalize])")
    pooling = modules[1].get_config_dict()
    mode = pooling.get("pooling_mode")
    if mode is None:  # older sentence-transformers: one flag per mode
        on = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v is True]
        mode = "mean" if on == ["pooling_mode_mean_tokens"] else ",".join(on)
    if mode != "mean":
        raise OnnxUnsupported(f"pooling {mode!r} (only mean pooling is exported)")
    transformer = modules[0]
    network = getattr(transformer, "auto_model", None)
    if network is None or getattr(transformer, "tokenizer", None) is None:
        raise OnnxUnsupported("the Transformer module has no auto_model or tokenizer")
    return transformer, network


def _cache_key(model_dir: str, input_names: Sequence[str]) -> str:
    import torch
    import transformers

    digest = hashlib.blake2b(digest_size=16)
    for key in (torch.__version__, transformers.__version__, str(OPSET), *input_names):
        digest.update(key.encode() + b"\0")
    files = sorted(p for p in Path(model_dir).rglob("*") if p.is_file() and ".git" not in p.parts)
    for path in files:
        digest.update(str(path.relative_to(model_dir)).encode() + b"\0")
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _export(network: Any, tokenizer: Any, input_names: list[str], target: Path) -> None:
    """Write the network's last hidden state as an ONNX graph with dynamic batch and length."""
    import torch

    class LastHidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            hidden: torch.Tensor = self.inner(
                **dict(zip(input_names, inputs, strict=True))
            ).last_hidden_state
            return hidden

    sample = tokenizer(["export sample", "a second, longer export sample"], padding=True)
    args = tuple(torch.tensor(sample[name]) for name in input_names)
    axes = {name: {0: "batch", 1: "tokens"} for name in [*input_names, "hidden"]}
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # tracer and deprecation chatter
            torch.onnx.export(
                LastHidden(network.eval()),
                args,
                str(partial),
                input_names=input_names,
                output_names=["hidden"],
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,  # the tracing exporter needs no onnxscript
            )
        os.replace(partial, target)  # readers never see half a file
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()


def _remove_stale_partials(folder: Path, older_than_s: float = 3600.0) -> None:
    """Half-written exports of processes killed mid-export (~90 MB each)."""
    import time

    for partial in folder.glob("*.onnx.*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - partial.stat().st_mtime > older_than_s:
                partial.unlink()


class OnnxEncoder:
    """Mean-pooled, normalised sentence vectors from an ONNX export of the network."""

    def __init__(
        self,
        path: Path,
        tokenizer: Any,
        input_names: list[str],
        max_length: int,
        threads: int,
        lower_case: bool = False,
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle workers must not spin: on a small machine they would take the core
        # that full-text search or the editor needs right after a query.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = path
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = tokenizer
        self.input_names = input_names
        self.max_length = max_length
        self.lower_case = lower_case
        self.calls = 0

    def encode(self, texts: Sequence[str], max_length: int | None = None) -> np.ndarray:
        # As sentence-transformers' Transformer module prepares its input.
        prepared = [t.strip().lower() if self.lower_case else t.strip() for t in texts]
        batch = self.tokenizer(
            prepared,
            padding=True,
            truncation=True,
            max_length=max_length or self.max_length,
            return_tensors="np",
        )
        feeds = {name: batch[name].astype(np.int64) for name in self.input_names}
        (hidden,) = self.session.run(["hidden"], feeds)
        mask = batch["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        self.calls += 1
        vectors: np.ndarray = (pooled / norms).astype(np.float32)
        return vectors


def build_onnx_encoder(
    model: Any,
    model_dir: str,
    torch_encode: Any,
    *,
    export_lock: Any = None,
    cache_dir: Path | None = None,
    threads: int = 1,
) -> OnnxEncoder:
    """An `OnnxEncoder` equal to `model` on the probes, exported first if not cached.

    `torch_encode(texts)` gives the reference vectors; `export_lock` (a context
    manager) is held while the export runs the model. Raises `OnnxUnsupported`.
    """
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise OnnxUnsupported("onnxruntime is not installed") from exc
    transformer, network = _parts(model)
    tokenizer = transformer.tokenizer
    accepted = set(inspect.signature(network.forward).parameters)
    input_names = [n for n in tokenizer.model_input_names if n in accepted]
    if "input_ids" not in input_names or "attention_mask" not in input_names:
        raise OnnxUnsupported(f"tokenizer inputs {tokenizer.model_input_names}")
    folder = cache_dir or onnx_cache_dir()
    _remove_stale_partials(folder)
    target = folder / f"{_cache_key(model_dir, input_names)}.onnx"
    max_length = int(transformer.max_seq_length)

    def load() -> OnnxEncoder:
        lower = bool(getattr(transformer, "do_lower_case", False))
        return OnnxEncoder(target, tokenizer, input_names, max_length, threads, lower)

    encoder = None
    if target.is_file():
        try:
            encoder = load()
        except Exception as exc:  # a damaged file: export it again
            log.warning("cached ONNX export %s is unreadable (%s); exporting again", target, exc)
    if encoder is None:
        try:
            with export_lock or contextlib.nullcontext():
                _export(network, tokenizer, input_names, target)
            encoder = load()
        except ImportError as exc:  # torch.onnx needs the `onnx` package
            raise OnnxUnsupported(f"cannot export to ONNX: {exc}") from exc
        except Exception as exc:
            raise OnnxUnsupported(f"ONNX export failed: {type(exc).__name__}: {exc}") from exc
    reference = np.asarray(torch_encode(_PROBES), dtype=np.float32)
    difference = float(np.abs(encoder.encode(_PROBES) - reference).max())
    if not difference <= MAX_DIFFERENCE:
        raise OnnxUnsupported(f"ONNX vectors differ from torch's by {difference:.2e}")
    encoder.calls = 0
    return encoder
