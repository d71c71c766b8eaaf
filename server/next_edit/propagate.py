"""Deterministic propagation: edits the user's last edit already determines, no model needed.

From the last edit site (the text before and after it):

- a rename (one identifier replaced by another) -> the remaining occurrences of
  the old name in its scope: the enclosing function when the name is bound
  there, else the file, and other files when a top-level definition was renamed;
- a changed call signature (a function's parameters edited) -> the calls that
  no longer match it, here and in other files, with the edit to make when it is
  known (a removed or renamed parameter) and as a jump target otherwise;
- an argument removed from, added to or changed in one call -> the other calls
  of that function that still look like the call did before;
- any other small substitution -> its next occurrence in the file.

Pure: texts in, `Candidate`s out. Other files' texts are handed in by the caller
(read off the event loop); `Plan.search` names the identifier to look them up by.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable, Sequence

import attrs

from lowentropy.server.text_edits import changed_span

from .diffs import Change
from .syntax import FUNCTIONS, SCOPES, Call, Header, Param, Source, parsed

_WORD = re.compile(r"\w")
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
MAX_SUBSTITUTION = 300  # characters; longer edits are not "the same thought again"
MAX_CANDIDATES = 200
_TOP_LEVEL = frozenset({"module", "program", "source_file", "translation_unit"})


@attrs.frozen(kw_only=True)
class Candidate:
    """A place that needs the same thought: the edit to make there when it is known."""

    uri: str
    start: int  # code points in that document's current text
    end: int
    new: str | None  # None: go there, the edit itself is not determined
    reason: str

    @property
    def change(self) -> Change | None:
        if self.new is None:
            return None
        return Change(uri=self.uri, start=self.start, end=self.end, new=self.new)


@attrs.frozen(kw_only=True)
class FileText:
    uri: str
    text: str
    language: str


@attrs.frozen(kw_only=True)
class Plan:
    """Local candidates, and what to look for in other files (if anything)."""

    kind: str  # rename | signature | call | substitution | none
    local: tuple[Candidate, ...]
    search: str | None = None  # identifier whose references in other files matter
    # For other files: how to turn a reference into a candidate.
    rename: tuple[str, str] | None = None
    old_header: Header | None = None
    new_header: Header | None = None
    call_change: tuple[Call, Call] | None = None


def _is_word(ch: str) -> bool:
    return bool(_WORD.match(ch))


def word_span(before: str, after: str) -> tuple[int, int, int]:
    """The changed span widened to whole words: (start, end in before, end in after)."""
    start, end_b, end_a = changed_span(before, after)
    while start > 0 and _is_word(before[start - 1]):
        start -= 1
    while end_b < len(before) and _is_word(before[end_b]):
        end_b += 1
        end_a += 1
    return start, end_b, end_a


def plan(uri: str, before: str, after: str, language: str) -> Plan:
    """What the edit `before` -> `after` of document `uri` determines, in that document."""
    if before == after:
        return Plan(kind="none", local=())
    start, end_b, end_a = word_span(before, after)
    old, new = before[start:end_b], after[start:end_a]
    src_after = parsed(after, language)
    if _IDENTIFIER.fullmatch(old) and _IDENTIFIER.fullmatch(new) and not keyword.iskeyword(old):
        found = _rename(uri, before, src_after, start, old, new, language)
        if found is not None:
            return found
    src_before = parsed(before, language)
    p0, pb, pa = changed_span(before, after)
    sig = _signature(uri, src_before, src_after, p0, pb, pa)
    if sig is not None:
        return sig
    call = _call_change(uri, src_before, src_after, p0, pb, pa)
    if call is not None:
        return call
    return _substitution(uri, src_after, start, end_a, old, new)


# ---- rename ---------------------------------------------------------------------------------


def _occurrences(src: Source, name: str, lo: int, hi: int, attribute: bool) -> list[int]:
    out: list[int] = []
    for m in re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", src.text[lo:hi]):
        s = lo + m.start()
        dotted = s > 0 and src.text[s - 1] == "."
        if dotted != attribute or not src.is_identifier(s, s + len(name)):
            continue
        out.append(s)
        if len(out) >= MAX_CANDIDATES:
            break
    return out


def _bound_in(text: str, name: str) -> bool:
    """Whether a function's text binds `name` (parameter, assignment, loop or `as` target)."""
    n = re.escape(name)
    header = text.split(")", 1)[0]
    return bool(
        re.search(rf"(?<![\w.]){n}(?!\w)", header)
        or re.search(rf"^\s*{n}\s*(?::[^=\n]*)?=(?!=)", text, re.MULTILINE)
        or re.search(rf"\b(?:for|as)\s+(?:\w+\s*,\s*)*{n}\b", text)
    )


def _rename(
    uri: str, before: str, src: Source, start: int, old: str, new: str, language: str
) -> Plan | None:
    attribute = start > 0 and src.text[start - 1] == "."
    lo, hi = 0, len(src.text)
    scope = src.enclosing(start, start + len(new), SCOPES)
    definition = src.node_at(start, start + len(new))
    top_level_def = False
    if definition is not None and definition.parent is not None:
        parent = definition.parent
        if parent.type in FUNCTIONS | {"class_definition", "class_declaration"}:
            grand = parent.parent
            top_level_def = grand is not None and grand.type in _TOP_LEVEL
    if scope is not None and not top_level_def:
        s, e = src.span(scope)
        # The scope in the text before the edit: same start, shifted end.
        before_scope = before[s : e - (len(src.text) - len(before))]
        # Bound here: a local. The new name bound here: the rest of a local rename in progress.
        if _bound_in(before_scope, old) or _bound_in(before_scope, new):
            lo, hi = s, e
    sites = _occurrences(src, old, lo, hi, attribute)
    local = tuple(
        Candidate(uri=uri, start=s, end=s + len(old), new=new, reason="rename") for s in sites
    )
    if not local and not top_level_def and (lo, hi) == (0, len(src.text)):
        return None  # not a rename after all: let the other rules look
    if not local and not top_level_def:
        return Plan(kind="none", local=())  # a local rename that is complete
    return Plan(
        kind="rename",
        local=local,
        search=old if top_level_def else None,
        rename=(old, new),
    )


def rename_elsewhere(plan_: Plan, files: Iterable[FileText]) -> list[Candidate]:
    assert plan_.rename is not None
    old, new = plan_.rename
    out: list[Candidate] = []
    for f in files:
        src = Source(f.text, f.language)
        for s in _occurrences(src, old, 0, len(f.text), attribute=False) + _occurrences(
            src, old, 0, len(f.text), attribute=True
        ):
            out.append(Candidate(uri=f.uri, start=s, end=s + len(old), new=new, reason="rename"))
    out.sort(key=lambda c: (c.uri, c.start))
    return out


# ---- signature changes ----------------------------------------------------------------------


def _signature(
    uri: str, before: Source, after: Source, start: int, end_b: int, end_a: int
) -> Plan | None:
    new_h = after.header_around(start, end_a)
    old_h = before.header_around(start, end_b)
    if new_h is None or old_h is None or new_h.name != old_h.name:
        return None
    if old_h.params == new_h.params:
        return None
    fixes = (_fix_call(uri, call, old_h, new_h) for call in after.calls_to(new_h.name))
    return Plan(
        kind="signature",
        local=tuple(c for c in fixes if c is not None),
        search=new_h.name,
        old_header=old_h,
        new_header=new_h,
    )


def _accepts(call: Call, params: Sequence[Param]) -> bool:
    """Whether `call` still binds to `params` (Python rules; unknowable with splats)."""
    if any(a.splat for a in call.args):
        return True
    positional = [a for a in call.args if a.keyword is None]
    keywords = {a.keyword for a in call.args if a.keyword is not None}
    slots: list[Param] = []
    kwonly = False
    star = dstar = False
    names: set[str] = set()
    required: list[str] = []
    for p in params:
        if p.kind == "sep":
            kwonly = kwonly or p.name == "*"
            continue
        if p.kind == "star":
            star, kwonly = True, True
            continue
        if p.kind == "dstar":
            dstar = True
            continue
        names.add(p.name)
        if not kwonly:
            slots.append(p)
        if p.kind == "pos":
            required.append(p.name)
    if len(positional) > len(slots) and not star:
        return False
    filled = {p.name for p in slots[: len(positional)]}
    if not dstar and keywords - names:
        return False
    return all(r in filled or r in keywords for r in required)


def _fix_call(uri: str, call: Call, old: Header, new: Header) -> Candidate | None:
    """The candidate for one call that no longer matches `new` (None when it still does)."""
    if _accepts(call, new.params) or not _accepts(call, old.params):
        return None  # fine as it is, or was already wrong: not this edit's business
    old_names = [p.name for p in old.params if p.kind != "sep"]
    new_names = [p.name for p in new.params if p.kind != "sep"]
    removed = [n for n in old_names if n not in new_names]
    added = [n for n in new_names if n not in old_names]
    if len(removed) == 1 and len(added) == 1:  # a renamed parameter: fix `old=` keywords
        for a in call.args:
            if a.keyword == removed[0]:
                kw_end = a.start + len(a.keyword)
                return Candidate(
                    uri=uri, start=a.start, end=kw_end, new=added[0], reason="signature"
                )
    if len(removed) == 1 and not added:
        name = removed[0]
        index = old_names.index(name)
        for i, a in enumerate(call.args):
            if a.keyword == name or (a.keyword is None and i == index):
                fixed = _without_arg(uri, call, i)
                if fixed is not None:
                    return fixed
    return Candidate(uri=uri, start=call.start, end=call.start, new=None, reason="signature")


def _without_arg(uri: str, call: Call, i: int) -> Candidate | None:
    args = call.args
    if i >= len(args):
        return None
    if i + 1 < len(args):
        start, end = args[i].start, args[i + 1].start
    elif i > 0:
        start, end = args[i - 1].end, args[i].end
    else:
        start, end = args[i].start, args[i].end
    return Candidate(uri=uri, start=start, end=end, new="", reason="call")


def _with_arg(uri: str, call: Call, i: int, text: str) -> Candidate:
    args = call.args
    if i < len(args):
        at, new = args[i].start, f"{text}, "
    elif args:
        at, new = args[-1].end, f", {text}"
    else:
        at, new = call.open_paren, text
    return Candidate(uri=uri, start=at, end=at, new=new, reason="call")


def signature_elsewhere(plan_: Plan, files: Iterable[FileText]) -> list[Candidate]:
    assert plan_.old_header is not None and plan_.new_header is not None
    out: list[Candidate] = []
    for f in files:
        src = Source(f.text, f.language)
        for call in src.calls_to(plan_.new_header.name):
            c = _fix_call(f.uri, call, plan_.old_header, plan_.new_header)
            if c is not None:
                out.append(c)
    return out


# ---- one call's arguments -------------------------------------------------------------------


def _call_change(
    uri: str, before: Source, after: Source, start: int, end_b: int, end_a: int
) -> Plan | None:
    new_call = after.call_around(start, end_a)
    old_call = before.call_around(start, end_b)
    if new_call is None or old_call is None or new_call.callee != old_call.callee:
        return None
    if new_call.start != old_call.start:
        return None
    olds = [a.text for a in old_call.args]
    news = [a.text for a in new_call.args]
    local: list[Candidate] = []
    for call in after.calls_to(new_call.callee):
        if call.start == new_call.start or len(call.args) != len(olds):
            continue
        c = _same_change(uri, call, olds, news)
        if c is not None:
            local.append(c)
    if not local:
        return None
    return Plan(kind="call", local=tuple(local), call_change=(old_call, new_call))


def _same_change(uri: str, call: Call, olds: list[str], news: list[str]) -> Candidate | None:
    """Do to `call` what was done to a call whose arguments went `olds` -> `news`."""
    if len(news) == len(olds) - 1:
        for i in range(len(olds)):
            if olds[:i] + olds[i + 1 :] == news:
                return _without_arg(uri, call, i)
    if len(news) == len(olds) + 1:
        for i in range(len(news)):
            if news[:i] + news[i + 1 :] == olds:
                return _with_arg(uri, call, i, news[i])
    if len(news) == len(olds):
        diff = [i for i in range(len(olds)) if olds[i] != news[i]]
        if len(diff) == 1:
            i = diff[0]
            target = call.args[i]
            if target.text == olds[i]:
                return Candidate(
                    uri=uri, start=target.start, end=target.end, new=news[i], reason="call"
                )
    return None


# ---- textual substitution -------------------------------------------------------------------


def _substitution(uri: str, src: Source, start: int, end_a: int, old: str, new: str) -> Plan:
    none = Plan(kind="none", local=())
    if not old or len(old) > MAX_SUBSTITUTION or len(new) > MAX_SUBSTITUTION:
        return none
    whole_lines = not new and old.endswith("\n") and (start == 0 or src.text[start - 1] == "\n")
    if ("\n" in old or "\n" in new) and not whole_lines:
        return none  # line structure changed: not a substitution to repeat
    if not re.search(r"\w\w|\S{3}", old):
        return none  # too small to mean anything on its own
    text = src.text
    lead = r"(?<!\w)" if _is_word(old[0]) else ""
    trail = r"(?!\w)" if _is_word(old[-1]) else ""
    k = new.find(old)  # an insertion around `old`: skip places already done
    out: list[Candidate] = []
    for m in re.finditer(lead + re.escape(old) + trail, text):
        s, e = m.start(), m.end()
        if start <= s < end_a or (whole_lines and s > 0 and text[s - 1] != "\n"):
            continue
        if k >= 0 and text[s - k : s - k + len(new)] == new:
            continue
        out.append(Candidate(uri=uri, start=s, end=e, new=new, reason="substitution"))
        if len(out) >= MAX_CANDIDATES:
            break
    return Plan(kind="substitution" if out else "none", local=tuple(out))


# ---- order ----------------------------------------------------------------------------------


def order(candidates: Iterable[Candidate], uri: str, cursor: int) -> list[Candidate]:
    """This file first, from the cursor down then from the top; other files after, by path."""

    def key(c: Candidate) -> tuple[int, str, int, int]:
        if c.uri == uri:
            return (0 if c.start >= cursor else 1, "", 0, c.start)
        return (2, c.uri, c.start, 0)

    seen: set[tuple[str, int, int]] = set()
    out: list[Candidate] = []
    for c in sorted(candidates, key=key):
        if (c.uri, c.start, c.end) not in seen:
            seen.add((c.uri, c.start, c.end))
            out.append(c)
    return out
