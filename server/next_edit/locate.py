"""Where the next edit goes, without the model: propagation's plan, candidate lines, the ranker.

`locate` is the cheap first half of a next-edit answer (a few to a few tens of
milliseconds: one tree-sitter parse for propagation, one `ast` parse and one
pyflakes pass for the candidates). It returns the place, the gate's confidence
in it and the edit propagation determined there, or edit 1 repeated there by
analogy (`analogy.py`), if any; or no place at all
when the evidence is weak (silence). Pure and CPU-bound: call it off the loop.
"""

from __future__ import annotations

import builtins
import re

import attrs

from lowentropy.server.text_edits import changed_span

from . import candidates, ranker
from .analogy import analogous_edit
from .fixes import drop_unused_import, respell_undefined
from .imports import moved_import
from .propagate import Candidate, Plan, order, plan
from .syntax import Source, parsed

NEAR_LINES = 1  # a propagated edit this close to the chosen line is the edit made there
TOP = 5
RUN_LINES = 3  # a line this close below the edit, alike and determined, is the next of a run
ALIKE = frozenset({"shape", "determined"})
_IMPORT_LINE = re.compile(r"[ \t]*(?:from\s+[\w.]+\s+)?import\s")
_BUILTINS = frozenset(dir(builtins))


@attrs.frozen(kw_only=True)
class Location:
    line: int  # 0-based, in the text after the edit
    offset: int  # code point to go to
    confidence: float  # the gate's probability that the place is right
    kinds: tuple[str, ...]  # the evidence behind it
    # The edit at this place first: propagation's, else edit 1 repeated by analogy; then
    # the rest of propagation's (the places after it).
    edits: tuple[Candidate, ...]


@attrs.frozen(kw_only=True)
class Located:
    plan: Plan
    location: Location | None  # None: silence
    candidates: int  # how many candidate lines were ranked
    top: tuple[tuple[int, tuple[str, ...]], ...] = ()  # the best TOP ranked: (line, kinds)


def locate(uri: str, before: str, after: str, language: str, cursor: int) -> Located:
    """The next edit's place after the edit `before` -> `after` of document `uri`."""
    found = plan(uri, before, after, language)
    cands = candidates.find(
        before,
        after,
        propagated=[c.start for c in found.local],
        determined=[c.start for c in found.local if c.new is not None],
        python=language == "python",
    )
    ranked = ranker.rank(cands)
    top = tuple((c.line, tuple(sorted(c.kinds()))) for _, c, _ in ranked[:TOP])
    determined = order([c for c in found.local if c.new is not None], uri, cursor)
    beside = _beside(found, determined, after, cursor)
    if beside is not None:
        return Located(plan=found, location=beside, candidates=len(cands), top=top)
    moved = _moved(uri, before, after) if language == "python" else None
    if moved is not None:
        return Located(plan=found, location=moved, candidates=len(cands), top=top)
    chosen = _next_alike(cands) or ranker.choose(ranked)
    if chosen is None:
        return Located(plan=found, location=None, candidates=len(cands), top=top)
    confidence, best = chosen
    here = [c for c in determined if abs(after.count("\n", 0, c.start) - best.line) <= NEAR_LINES]
    if here and language == "python" and _breaks(after, here[0]):
        here = []  # a substitution repeated where it does not fit (`def os.getcwd():`)
    edits = here[:1] + [c for c in determined if c not in here[:1]] if here else []
    unimported = _unimport(uri, after, here[0], best) if here and language == "python" else None
    if unimported is not None:
        edits = [unimported]
    unused = [e.name for e in best.evidence if e.kind == "problem" and e.name]
    if not edits and unused:
        start = after.rfind("\n", 0, best.offset) + 1
        for fix, reason in ((drop_unused_import, "unused-import"), (respell_undefined, "respell")):
            found_fix = fix(after, start, unused[0])
            if found_fix is not None:
                s, e, new = found_fix
                edits = [Candidate(uri=uri, start=s, end=e, new=new, reason=reason)]
                break
    if not edits:
        same = analogous_edit(before, after, best.offset)
        if same is not None:
            s, e, new = same
            edit = Candidate(uri=uri, start=s, end=e, new=new, reason="analogy")
            if language != "python" or not _breaks(after, edit):
                edits = [edit]
    return Located(
        plan=found,
        location=Location(
            line=best.line,
            offset=here[0].start if here else best.offset,
            confidence=confidence,
            kinds=tuple(sorted(best.kinds())),
            edits=tuple(edits),
        ),
        candidates=len(cands),
        top=top,
    )


def _beside(found: Plan, determined: list[Candidate], after: str, cursor: int) -> Location | None:
    """A rename's next occurrence on the cursor's own line, after the cursor (`x = x or 1`
    with the first `x` renamed): the candidate lines leave out the edited line, and no place
    is surer than this one."""
    if found.kind != "rename" or not determined:
        return None
    line_start = after.rfind("\n", 0, cursor) + 1
    line_end = after.find("\n", cursor)
    line_end = len(after) if line_end < 0 else line_end
    first = determined[0]
    if not cursor <= first.start < line_end:
        return None
    return Location(
        line=after.count("\n", 0, line_start),
        offset=first.start,
        confidence=1.0,
        kinds=("determined", "propagation"),
        edits=tuple(determined),
    )


def _moved(uri: str, before: str, after: str) -> Location | None:
    """The other half of a name moved between imports (`imports.py`): a rule, like
    `_beside`, because the place and the edit are both certain. Not within RUN_LINES of
    the edit: the import line right beside the one just edited is made with it, and the
    history cases cannot ask for it (their two edits are 4+ lines apart); there the
    ranker's place stands (on dev, three commits that also dropped `typing.Dict`: its
    respelling at a use)."""
    found = moved_import(before, after)
    if found is None:
        return None
    line, (start, end, new) = found
    edit_start, _, edit_end = changed_span(before, after)
    if (
        after.count("\n", 0, edit_start) - RUN_LINES
        <= line
        <= after.count("\n", 0, edit_end) + RUN_LINES
    ):
        return None
    edit = Candidate(uri=uri, start=start, end=end, new=new, reason="import-move")
    return Location(
        line=line,
        offset=start,
        confidence=1.0,
        kinds=("determined", "import"),
        edits=(edit,),
    )


def _unimport(uri: str, text: str, edit: Candidate, best: candidates.Candidate) -> Candidate | None:
    """A substitution repeated into an import (`from ._compat import text_type` ->
    `... import str`) where the name it replaces is now unused (pyflakes, on that line)
    and the new one is a builtin, defined in this file or imported by another import:
    the import goes instead (on dev, `text_type` -> `str`, `json` -> `_CompactJSON`)."""
    old, new = text[edit.start : edit.end], edit.new or ""
    if not (old.isidentifier() and new.isidentifier()):
        return None
    start = text.rfind("\n", 0, edit.start) + 1
    if not _IMPORT_LINE.match(text, start):
        return None
    if text.count("\n", 0, start) != best.line or not any(
        e.kind == "problem" and e.name == old for e in best.evidence
    ):
        return None
    defined = re.search(
        rf"^(?:(?:async\s+)?def|class)\s+{new}\b|^{new}\s*[:=]|^\s*from\s.*\bimport\b.*\b{new}\b",
        text,
        re.M,
    )
    if new not in _BUILTINS and defined is None:
        return None
    dropped = drop_unused_import(text, start, old)
    if dropped is None:
        return None
    s, e, replacement = dropped
    return Candidate(uri=uri, start=s, end=e, new=replacement, reason="unused-import")


def _next_alike(cands: list[candidates.Candidate]) -> tuple[float, candidates.Candidate] | None:
    """A line just below the edit that looked like the edited line did and where
    propagation knows the edit (`add_argument` calls one under the other, the first
    given an argument): a run of alike lines is edited line after line. The history
    cases cannot teach this (their two edits are 4+ lines apart by construction), so
    it is a rule, like `_beside`; on dev it fires once (an unknowable case)."""
    near = [c for c in cands if 0 < c.distance <= RUN_LINES and ALIKE <= c.kinds()]
    return (1.0, min(near, key=lambda c: c.distance)) if near else None


def _breaks(text: str, edit: Candidate) -> bool:
    """Whether `edit` adds syntax errors (tree-sitter: a failing `ast.parse` of a large
    file takes ~0.3 s)."""
    new = text[: edit.start] + (edit.new or "") + text[edit.end :]
    base = parsed(text, "python")
    return Source(new, "python", base).errors() > base.errors()
