"""Prompt rendering: priority rendering under a token budget, FIM formats, the Tab prompt.

Pure: it imports nothing from `lowentropy.models`; callers hand it a
token-counting function (e.g. `Renderer.for_tokenizer(generator.tokenizer())`).
"""

from .apply import (
    ApplyFormat,
    ApplyPrompt,
    UpdatedCodeStream,
    apply_chat_request,
    apply_completion_request,
    apply_format_names,
    get_apply_format,
    parse_updated_code,
    render_apply,
)
from .fim import (
    FimTemplate,
    UnknownTemplateError,
    get_template,
    guess_template,
    line_comment,
    template_names,
)
from .recorder import PromptRecord, PromptRecorder, load_records, replay
from .renderer import (
    Component,
    PromptTooLargeError,
    Renderer,
    RenderResult,
    TokenizerLike,
    file_lines,
    group,
    render,
    text,
)
from .tab import (
    DEFAULT_SUFFIX_SHARE,
    TabInputs,
    TabPrompt,
    render_tab_inputs,
    render_tab_prompt,
)

__all__ = [
    "ApplyFormat",
    "ApplyPrompt",
    "UpdatedCodeStream",
    "apply_chat_request",
    "apply_completion_request",
    "apply_format_names",
    "get_apply_format",
    "parse_updated_code",
    "render_apply",
    "DEFAULT_SUFFIX_SHARE",
    "Component",
    "FimTemplate",
    "PromptRecord",
    "PromptRecorder",
    "PromptTooLargeError",
    "RenderResult",
    "Renderer",
    "TabInputs",
    "TabPrompt",
    "TokenizerLike",
    "UnknownTemplateError",
    "file_lines",
    "get_template",
    "group",
    "guess_template",
    "line_comment",
    "load_records",
    "render",
    "render_tab_inputs",
    "render_tab_prompt",
    "replay",
    "template_names",
    "text",
]
