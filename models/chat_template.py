"""A GGUF model's own chat template, as llama-cpp-python's Jinja2 formatter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lowentropy.models.llama_tokenizer import LlamaTokenizer

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

__all__ = ["chat_formatter"]


def chat_formatter(llm: Llama, tokenizer: LlamaTokenizer) -> Jinja2ChatFormatter | None:
    """The model's own chat template (GGUF metadata), or None when it has none."""
    import jinja2
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        return None

    def text(token: int) -> str:
        return tokenizer.detokenize([token], special=True) if token >= 0 else ""

    try:
        return Jinja2ChatFormatter(
            template=template, eos_token=text(llm.token_eos()), bos_token=text(llm.token_bos())
        )
    except jinja2.TemplateError:  # a broken template: treat the model as having none
        return None
