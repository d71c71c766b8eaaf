"""The pure core of Apply: place a sketch, merge it, verify, and express the change as edits.

No LSP and no model here: `server/apply.py`-level code composes these with the
apply model. The API:

    plan = plan_apply(original, sketch, *, language, selection=None, path=None) -> ApplyPlan
        `sketch` may be a whole markdown chat answer: its block for `path` is placed
        (`markdown.py`), and ApplyPlan.sketch is that code (verify against it)
        ApplyPlan.result     new text when the deterministic path placed the sketch for
                             certain (and the result verified), else None
        ApplyPlan.regions    Region(start_line, end_line, original, update, merged): original
                             lines [start_line, end_line) (0-based, end exclusive), their text,
                             the sketch part for them (markers kept, re-indented to the file),
                             and their new text when known (`merged`); without a result, the
                             regions the apply model must rewrite
        ApplyPlan.reason     why the model is needed, or why nothing can be done (no regions)
    splice(original, [(region, rewritten_text), ...]) -> str
        puts rewritten regions back (the file's line endings and final newline kept)
    verify(original, result, sketch, *, language, regions=None) -> Verification(ok, reason)
    verify_rewrite(region_original, update, rewritten) -> Verification
        a model's rewrite of one region keeps what the update elides and invents nothing
    minimal_edits(original, result) -> list[TextEditSpec(start_line, start_char_utf16,
                                                          end_line, end_char_utf16, new_text)]
    unified_diff(original, result, path) -> str
        (these two live in `server/text_edits.py`, shared with next edit; named here too)

`language` is a `retrieval.languages` id ("python", "javascript", "typescript", "tsx", "go",
...); None or "text" means unknown: no syntax check, definitions found by indentation.
A sketch elides unchanged code with markers such as `# ... existing code ...`,
`// ...`, `/* unchanged */`, `<!-- rest of the file -->`, `-- ...` or a bare `...`
(see `sketch.py`); one without markers replaces the definitions whose headers it
contains (the rest of the file stays), or the selection when one is given. Unchanged lines
may come abbreviated (`def f(self, a, ...):`, `"..."`, a trailing comment dropped; see
`abbrev.py`): they anchor, and the original line stays.
"""

from __future__ import annotations

from lowentropy.server.text_edits import TextEditSpec, minimal_edits, unified_diff

from .merge import Region, splice
from .plan import ApplyPlan, plan_apply
from .sketch import Sketch, SketchLine, is_marker, parse_sketch
from .verify import DriftGuard, Verification, verify, verify_rewrite

__all__ = [
    "DriftGuard",
    "ApplyPlan",
    "Region",
    "Sketch",
    "SketchLine",
    "TextEditSpec",
    "Verification",
    "is_marker",
    "minimal_edits",
    "parse_sketch",
    "plan_apply",
    "splice",
    "unified_diff",
    "verify",
    "verify_rewrite",
]
