"""Check a new text before anything is written: nothing lost, nothing else touched, nothing broken.

Checks, in order (the first failure is the reason):
1. encoding: no lone surrogates, no new U+FFFD, a byte-order mark kept;
2. the final newline and the line endings (all CRLF stays all CRLF, all LF stays LF);
3. text outside the rewritten regions is byte-identical (without regions: every added line
   comes from the sketch);
4. every non-marker sketch line is in the result, in order (compared stripped, so modulo
   the re-indentation applied);
5. new lines are indented in the file's style (tabs or spaces);
6. no changed line was added beside the line it changes: two or more new lines that are kept
   lines of the same definition with one name renamed (the same rename each time), while the
   sketch shows neither those kept lines nor the old name (a rename put next to its lines
   instead of over them, which every other check lets through);
7. no line is deleted between two lines that stand together elsewhere in the original (the
   sketch fits there with nothing deleted, so its place is not proven: `verify_place.py`);
8. the language's own compiler (Python's `compile`) accepts the result when it accepted the
   original: tree-sitter's grammar takes a body at its header's depth, `return` outside a
   function, and more that CPython refuses;
9. tree-sitter finds no ERROR or MISSING node the original did not have (counted over the
   whole file and over the changed stretch, so an existing error elsewhere is no excuse).
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable

import attrs

from .abbrev import abbreviation, elides, matches
from .guard import DriftGuard
from .line_keys import renamed
from .merge import Region
from .sketch import is_marker, parse_sketch
from .syntax import compile_error, definitions, parse, syntax_errors
from .text import Lines, indent_style, split_lines
from .verify_place import deletion_fits_elsewhere

__all__ = ["DriftGuard", "Verification", "verify", "verify_rewrite"]


@attrs.frozen
class Verification:
    ok: bool
    reason: str | None = None


def _fail(reason: str) -> Verification:
    return Verification(ok=False, reason=reason)


def _encoding(original: str, result: str) -> str | None:
    try:
        result.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"the result has an unencodable character at offset {exc.start}"
    if result.count("\ufffd") > original.count("\ufffd"):
        return "the result has replacement characters (U+FFFD) the original did not"
    if original.startswith("\ufeff") != result.startswith("\ufeff"):
        return "the byte-order mark was not preserved"
    return None


def _endings(old: Lines, new: Lines, original: str, result: str) -> str | None:
    if original and original.endswith("\n") != result.endswith("\n"):
        had = "had" if original.endswith("\n") else "had no"
        return f"the final newline changed (the original {had} one)"
    endings = {e for e in old.eols if e}
    if len(endings) == 1:
        (only,) = endings
        for k, eol in enumerate(new.eols):
            if eol and eol != only:
                name = "CRLF" if only == "\r\n" else "LF"
                return f"line {k + 1} does not end in {name} like the rest of the file"
    return None


def _outside(old: Lines, result: str, regions: list[Region]) -> str | None:
    cursor = 0
    at = 0
    for region in sorted(regions, key=lambda r: r.start_line):
        kept = old.join(cursor, region.start_line)
        if cursor == 0:
            if not result.startswith(kept):
                return f"text before line {region.start_line + 1} changed"
            at = len(kept)
        else:
            found = result.find(kept, at)
            if found < 0:
                return f"text between lines {cursor + 1} and {region.start_line} changed"
            at = found + len(kept)
        cursor = region.end_line
    tail = old.join(cursor)
    if not result.endswith(tail) or len(result) - len(tail) < at:
        return f"text after line {cursor} changed"
    return None


def _changed(old: Lines, new: Lines) -> tuple[int, int, int, int]:
    """The changed stretch: old lines [a, b) became new lines [a, c); d = lines of common tail."""
    n, m = len(old.text), len(new.text)
    a = 0
    while a < min(n, m) and old.text[a] == new.text[a]:
        a += 1
    tail = 0
    while tail < min(n, m) - a and old.text[n - 1 - tail] == new.text[m - 1 - tail]:
        tail += 1
    return a, n - tail, m - tail, tail


def _added(old: Lines, new: Lines) -> list[int]:
    a, b, c, _ = _changed(old, new)
    matcher = difflib.SequenceMatcher(None, old.text[a:b], new.text[a:c], autojunk=False)
    added: list[int] = []
    for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "insert"):
            added.extend(range(a + j1, a + j2))
    return added


def _sketch_in_order(new: Lines, sketch: str, original: str) -> str | None:
    wanted = [
        (k, line.text.strip())
        for k, line in enumerate(parse_sketch(sketch, original).lines)
        if not line.marker and line.text.strip()
    ]
    stripped = [line.strip() for line in new.text]
    at = 0
    for k, text in wanted:
        while at < len(stripped) and not _same_line(text, stripped[at]):
            at += 1
        if at == len(stripped):
            return f"sketch line {k + 1} ({text[:60]!r}) is missing from the result or out of order"
        at += 1
    return None


@functools.lru_cache(maxsize=4096)
def _pattern(sketch_line: str) -> re.Pattern[str] | None:
    return abbreviation(sketch_line)


def _same_line(sketch_line: str, line: str) -> bool:
    """Stripped sketch line and stripped result line are the same, or the first abbreviates
    the second."""
    return sketch_line == line or matches(_pattern(sketch_line), line)


def _from_sketch(old: Lines, new: Lines, sketch: str) -> str | None:
    lines = {line.strip() for line in sketch.split("\n")}
    for k in _added(old, new):
        if new.text[k].strip() not in lines:
            return (
                f"result line {k + 1} ({new.text[k].strip()[:60]!r}) is in neither file nor sketch"
            )
    return None


def _abbreviations(old: Lines, new: Lines) -> str | None:
    """An abbreviated line (`"..."`, `f(a, ...)`) is an anchor: written as code, it was not
    placed on the line it stands for."""
    for k in _added(old, new):
        if elides(new.text[k].strip()):
            return (
                f"result line {k + 1} ({new.text[k].strip()[:60]!r}) abbreviates code with an "
                "ellipsis, but no original line there fits it"
            )
    return None


def _indentation(old: Lines, new: Lines) -> str | None:
    style = indent_style(old.text)
    uses_tabs = any(line.startswith("\t") for line in old.text)
    uses_spaces = any(line.startswith(" " * style.unit) for line in old.text)
    for k in _added(old, new):
        line = new.text[k]
        if style.tabs and not uses_spaces and line.startswith(" " * style.unit):
            return f"result line {k + 1} is indented with spaces in a file indented with tabs"
        if not style.tabs and not uses_tabs and line.startswith("\t"):
            return f"result line {k + 1} is indented with tabs in a file indented with spaces"
    return None


_NAME = re.compile(r"(?<![\w.$])[A-Za-z_$][\w$]*")  # a name, not an attribute (`x.name`)
_WINDOW = 60  # lines searched either side of a new line outside any definition


def _renames_beside(
    old: Lines, new: Lines, result: str, sketch: str, original: str, language: str | None
) -> str | None:
    added = _added(old, new)
    if not added:
        return None
    literal = [
        line.text.strip()
        for line in parse_sketch(sketch, original).lines
        if not line.marker and line.text.strip()
    ]
    shown = set(literal)
    names = {name for line in literal for name in _NAME.findall(line)}
    fresh = set(added)
    defs = definitions(result, new.text, language)
    twins: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for k in added:
        text = new.text[k].strip()
        if not text:
            continue
        holding = [d for d in defs if d.start <= k < d.end]
        inner = min(holding, key=lambda d: d.end - d.start, default=None)
        a, b = (inner.start, inner.end) if inner else (k - _WINDOW, k + _WINDOW + 1)
        for m in range(max(0, a), min(len(new.text), b)):
            kept = new.text[m].strip()
            if m in fresh or not kept or kept in shown:
                continue
            pair = renamed(text, kept)
            if pair is not None and pair[0] not in names:
                twins.setdefault(pair, []).append((k, m))
    for (was, now), found in twins.items():
        news = sorted({k for k, _ in found})
        olds = sorted({m for _, m in found})
        if len(news) >= 2 and len(olds) >= 2:
            return (
                f"result lines {news[0] + 1} and {news[1] + 1} rename {was!r} to {now!r} beside "
                f"lines {olds[0] + 1} and {olds[1] + 1}, which still use {was!r}: the changed "
                "lines were added next to the lines they change"
            )
    return None


def _compiles(original: str, result: str, language: str | None) -> str | None:
    error = compile_error(result, language)
    if error is None or compile_error(original, language) is not None:
        return None  # an original that already fails: tree-sitter compares the errors
    message, row, column = error
    return f"the result does not compile: {message} at line {row + 1}, column {column + 1}"


def _syntax(original: str, result: str, old: Lines, new: Lines, language: str | None) -> str | None:
    before, after = parse(original, language), parse(result, language)
    if before is None or after is None:
        return None
    old_errors, new_errors = syntax_errors(before), syntax_errors(after)
    a, b, c, _ = _changed(old, new)
    old_mid = [e for e in old_errors if a <= e[1] < max(b, a + 1)]
    new_mid = [e for e in new_errors if a <= e[1] < max(c, a + 1)]
    if len(new_errors) > len(old_errors) or len(new_mid) > len(old_mid):
        fresh = new_mid[len(old_mid)] if len(new_mid) > len(old_mid) else new_errors[-1]
        kind, row, column = fresh
        return f"the result has a new syntax error ({kind}) at line {row + 1}, column {column + 1}"
    return None


def _nonblank(texts: list[str] | tuple[str, ...]) -> list[str]:
    return [t.strip() for t in texts if t.strip()]


@attrs.frozen
class _Run:
    """A marker-free run of the update's non-blank lines (stripped), and whether a marker
    stands right before or after it (what lies beyond that edge is elided, not removed)."""

    lines: tuple[str, ...]
    marker_before: bool
    marker_after: bool
    raw: tuple[str, ...]  # blank lines included (as "")


def _sketch_runs(update: str, original: str) -> list[_Run]:
    """What the update shows contiguous, run by run."""
    runs: list[_Run] = []
    current: list[str] = []
    marker_before = False

    def close(marker_after: bool) -> None:
        if any(current):
            runs.append(
                _Run(tuple(t for t in current if t), marker_before, marker_after, tuple(current))
            )

    for line in parse_sketch(update, original).lines:
        if line.marker:
            close(True)
            current, marker_before = [], True
        else:
            current.append(line.text.strip())
    close(False)
    return runs


def _shows(run: _Run, chain: list[str], at_start: bool, at_end: bool, raw: bool = False) -> bool:
    """Whether `run` shows `chain` contiguous; a chain that runs to the region's start (end)
    must also start (end) the run, with no marker there to stand for the lines removed.
    `raw`: the chain counts blank lines (a blank line shown as context for a deletion)."""
    n, lines = len(chain), run.raw if raw else run.lines
    for i in range(len(lines) - n + 1):
        if not all(_same_line(a, b) for a, b in zip(lines[i : i + n], chain, strict=True)):
            continue
        if at_start and (i > 0 or run.marker_before):
            continue
        if at_end and (i + n < len(lines) or run.marker_after):
            continue
        return True
    return False


def _blank_count(texts: list[str] | tuple[str, ...]) -> int:
    return sum(1 for t in texts if not t.strip())


def _blanks_shown(new: tuple[str, ...], j1: int, j2: int, runs: list[_Run]) -> bool:
    """Whether the update shows new lines [j1, j2) with the non-blank lines around them, blank
    lines and all: spacing a model changes where the sketch elides is a whitespace edit nobody
    asked for (whitespace drift in the sketch itself never reaches the merge)."""
    p = j1 - 1
    while p >= 0 and not new[p].strip():
        p -= 1
    q = j2
    while q < len(new) and not new[q].strip():
        q += 1
    chain = [t.strip() for t in new[max(p, 0) : min(q + 1, len(new))]]
    return any(_shows(run, chain, p < 0, q >= len(new), raw=True) for run in runs)


def verify_rewrite(original_region: str, update: str, rewritten: str) -> Verification:
    """Whether a model's rewrite of one region keeps what the update elides and invents nothing.

    A model can drift: drop lines the update elides with a marker, or write lines that
    are neither in the region nor in the update. The whole-file checks cannot see either
    inside a rewritten region, so: every added line must come from the update or the
    region, and every original line the rewrite removes (beyond a one-for-one replacement)
    must be shown removed by the update: the kept lines around it, and whatever replaced
    it, stand contiguous in the update with no marker between (lines removed up to the
    region's edge: the update shows that edge, with no marker beyond it). An update without
    markers is the region's whole new text, so it may remove anything.
    """
    old, new = split_lines(original_region), split_lines(rewritten)
    region_lines = frozenset(t.strip() for t in old.text)
    known = {t.strip() for t in update.split("\n")} | region_lines
    matcher = difflib.SequenceMatcher(None, old.text, new.text, autojunk=False)
    opcodes = matcher.get_opcodes()
    for tag, _i1, _i2, j1, j2 in opcodes:
        if tag in ("replace", "insert"):
            for k in range(j1, j2):
                text = new.text[k].strip()
                if text not in known:
                    return _fail(
                        f"rewritten line {k + 1} ({text[:60]!r}) is in neither "
                        "the region nor the sketch"
                    )
                if text not in region_lines and is_marker(new.text[k], region_lines):
                    return _fail(
                        f"rewritten line {k + 1} ({text[:60]!r}) is one of the sketch's elision "
                        "markers, written as code"
                    )
                if "..." in text or "…" in text:
                    stands_for = next((t for t in old.text if _same_line(text, t.strip())), None)
                    if stands_for is not None and stands_for.strip() != text:
                        return _fail(
                            f"rewritten line {k + 1} ({text[:60]!r}) copies the sketch's "
                            f"abbreviation of {stands_for.strip()[:60]!r}"
                        )
    parsed = parse_sketch(update, original_region)
    if not parsed.has_markers:
        return Verification(ok=True)
    runs = _sketch_runs(update, original_region)
    for tag, i1, i2, j1, j2 in opcodes:
        change = _blank_count(new.text[j1:j2]) - _blank_count(old.text[i1:i2])
        if tag != "equal" and change and not _blanks_shown(new.text, j1, j2, runs):
            what = "adds" if change > 0 else "drops"
            return _fail(
                f"the rewrite {what} {abs(change)} blank line(s) near rewritten line {j1 + 1} "
                "where the sketch does not show that spacing"
            )
    for tag, i1, i2, j1, j2 in opcodes:
        if tag not in ("replace", "delete"):
            continue
        removed = _nonblank(old.text[i1:i2])
        added = _nonblank(new.text[j1:j2])
        if len(removed) <= len(added):
            continue  # one-for-one (or growing) replacement: the added lines are checked above
        before = _nonblank(new.text[:j1])[-1:]
        after = _nonblank(new.text[j2:])[:1]
        chain = before + added + after
        if not before and not after:
            return _fail(
                "the rewrite keeps nothing of the region although the sketch marks code as kept"
            )
        if any(_shows(run, chain, not before, not after) for run in runs):
            continue
        # A blank line beside the removed lines, shown in the update as the deletion's context.
        near = [new.text[j1 - 1].strip()] if j1 > 0 else []
        far = [new.text[j2].strip()] if j2 < len(new.text) else []
        blank = [t.strip() for t in new.text[j1:j2]]
        if "" not in near + far or not any(
            _shows(run, near + blank + far, not near, not far, raw=True) for run in runs
        ):
            return _fail(
                f"the rewrite drops {len(removed) - len(added)} line(s) of the region "
                f"({removed[0][:60]!r}…) that the sketch does not show removed"
            )
    return Verification(ok=True)


def verify(
    original: str,
    result: str,
    sketch: str,
    *,
    language: str | None,
    regions: list[Region] | tuple[Region, ...] | None = None,
) -> Verification:
    """Whether `result` is a safe outcome of applying `sketch` to `original` (see module doc)."""
    old, new = split_lines(original), split_lines(result)
    checks: tuple[Callable[[], str | None], ...] = (
        lambda: _encoding(original, result),
        lambda: _endings(old, new, original, result),
        lambda: (
            _outside(old, result, list(regions))
            if regions is not None
            else _from_sketch(old, new, sketch)
        ),
        lambda: _sketch_in_order(new, sketch, original),
        lambda: _abbreviations(old, new),
        lambda: _indentation(old, new),
        lambda: _renames_beside(old, new, result, sketch, original, language),
        lambda: deletion_fits_elsewhere(old, new),
        lambda: _compiles(original, result, language),
        lambda: _syntax(original, result, old, new, language),
    )
    for check in checks:
        reason = check()
        if reason is not None:
            return _fail(reason)
    return Verification(ok=True)
