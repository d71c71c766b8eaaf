"""Exact token counts of a text from the count of a text it was edited from.

Consecutive prompts differ in a line or two, and tokenizing a whole prompt is
the costly step on the keystroke path (llama.cpp tokenizes ~2 KB per ms). The
text is diffed against the earlier one, and only windows around the changed
regions are tokenized, old and new, with two unchanged non-blank lines of
context on each side; the count moves by the windows' difference
(`delta_count`). Pure: the counting function is handed in.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["CountFn", "Region", "changed_regions", "delta_count", "diff_windows"]

CountFn = Callable[[str], int]

_CONTEXT = 2  # unchanged non-blank lines kept on each side of a changed region
_ANCHOR = 48  # characters searched for when looking for an unchanged run inside a change
_RUN = 256  # an unchanged run inside a change shorter than this is not worth splitting on
_GALLOP = 64


def _common_prefix(a: str, b: str, i: int, j: int, limit: int) -> int:
    """Length of the common run of `a[i:]` and `b[j:]`, at most `limit` (compared in C)."""
    n, step = 0, _GALLOP
    while n < limit:
        k = min(step, limit - n)
        if a[i + n : i + n + k] != b[j + n : j + n + k]:
            lo, hi = n, n + k  # a run of `lo` matches, one of `hi` does not
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if a[i + lo : i + mid] == b[j + lo : j + mid]:
                    lo = mid
                else:
                    hi = mid
            return lo
        n += k
        step *= 2
    return limit


def _common_suffix(a: str, b: str, i: int, j: int, limit: int) -> int:
    """Length of the common run of `a[:i]` and `b[:j]` (ending there), at most `limit`."""
    n, step = 0, _GALLOP
    while n < limit:
        k = min(step, limit - n)
        if a[i - n - k : i - n] != b[j - n - k : j - n]:
            lo, hi = n, n + k
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if a[i - mid : i - lo] == b[j - mid : j - lo]:
                    lo = mid
                else:
                    hi = mid
            return lo
        n += k
        step *= 2
    return limit


Region = tuple[int, int, int, int]  # old[lo:hi] became new[lo:hi]: (old lo, old hi, new lo, new hi)


def changed_regions(old: str, new: str) -> list[Region]:
    """Where `new` differs from `old`, in order, between unchanged runs.

    Finds the common head and tail, then looks for one long unchanged run
    inside what is left (twice): a prompt whose window top moved while the
    cursor line changed has two changes with the whole file excerpt between.
    """
    return _split(old, new, 0, len(old), 0, len(new), 2)


def _split(old: str, new: str, olo: int, ohi: int, nlo: int, nhi: int, depth: int) -> list[Region]:
    head = _common_prefix(old, new, olo, nlo, min(ohi - olo, nhi - nlo))
    olo, nlo = olo + head, nlo + head
    tail = _common_suffix(old, new, ohi, nhi, min(ohi - olo, nhi - nlo))
    ohi, nhi = ohi - tail, nhi - tail
    if olo == ohi and nlo == nhi:
        return []
    if depth and min(ohi - olo, nhi - nlo) >= 2 * _RUN:
        for num, den in ((1, 2), (1, 4), (3, 4)):
            pos = nlo + (nhi - nlo) * num // den
            j = old.find(new[pos : pos + _ANCHOR], olo, ohi)
            if j < 0:
                continue
            back = _common_suffix(old, new, j, pos, min(j - olo, pos - nlo))
            ahead = _common_prefix(old, new, j, pos, min(ohi - j, nhi - pos))
            if back + ahead >= _RUN:
                left = _split(old, new, olo, j - back, nlo, pos - back, depth - 1)
                right = _split(old, new, j + ahead, ohi, pos + ahead, nhi, depth - 1)
                return left + right
    return [(olo, ohi, nlo, nhi)]


def _context_before(t: str, pos: int, floor: int) -> int | None:
    """Start of a window for a change at `pos`: a newline with `_CONTEXT` complete
    non-blank lines of `t[floor:pos]` after it, or 0 at the text's start; None when
    `t[floor:pos]` (the unchanged text before the change) is too short."""
    need = _CONTEXT
    cur = t.rfind("\n", floor, pos)  # the newline that starts pos's line
    while cur >= 0:
        prev = t.rfind("\n", floor, cur)
        if prev < 0:
            break
        if not t[prev + 1 : cur].isspace() and prev + 1 < cur:
            need -= 1
            if need == 0:
                return prev
        cur = prev
    return 0 if floor == 0 else None


def _context_after(t: str, pos: int, ceil: int) -> int | None:
    """End of a window for a change ending at `pos` (exclusive, a newline or the
    text's end) with `_CONTEXT` complete non-blank lines of `t[pos:ceil]` before it;
    None when `t[pos:ceil]` is too short."""
    need = _CONTEXT
    cur = t.find("\n", pos, ceil)  # the newline that ends pos's line
    while cur >= 0:
        nxt = t.find("\n", cur + 1, ceil)
        if nxt < 0:
            break
        if not t[cur + 1 : nxt].isspace() and cur + 1 < nxt:
            need -= 1
            if need == 0:
                return nxt
        cur = nxt
    return len(t) if ceil == len(t) else None


def diff_windows(old: str, new: str) -> list[Region]:
    """Windows around the changed regions, as (old start, old end, new start, new end).

    Each window adds `_CONTEXT` unchanged non-blank lines on both sides of its
    change (or reaches the text's start or end); windows that would overlap, or
    whose context would reach into another change, are merged. Outside the
    windows `old` and `new` agree.
    """
    regions = [list(r) for r in changed_regions(old, new)]
    while True:
        windows: list[Region] = []
        merge = -1  # merge regions merge and merge + 1, then start over
        for k, (olo, ohi, nlo, nhi) in enumerate(regions):
            floor = regions[k - 1][3] if k else 0
            ceil = regions[k + 1][2] if k + 1 < len(regions) else len(new)
            start = _context_before(new, nlo, floor)
            end = _context_after(new, nhi, ceil)
            if start is None or (windows and start < windows[-1][3]):
                merge = k - 1
                break
            if end is None:
                merge = k
                break
            # The unchanged runs around a change sit at the same distance in both texts.
            windows.append((start - nlo + olo, end - nhi + ohi, start, end))
        if merge < 0:
            return windows
        a, b = regions[merge], regions.pop(merge + 1)
        regions[merge] = [a[0], b[1], a[2], b[3]]


def delta_count(old: str, old_tokens: int, new: str, count: CountFn) -> int | None:
    """`count(new)` from `count(old) == old_tokens`, tokenizing only the diff windows
    of both texts; None when the windows cover most of `new` (count it whole).

    Exact for tokenizers whose merges do not reach across a non-blank line: BPE
    with regex pre-tokenization (pre-tokens are runs of letters, digits,
    punctuation with trailing newlines, or whitespace, so the scans of a window
    and of the whole text agree from the window's first non-blank line on) and
    SentencePiece (its space prefix starts both windows alike). Special tokens
    split the text in llama.cpp, so they only shorten the reach.
    """
    windows = diff_windows(old, new)
    if sum(ne - ns for _, _, ns, ne in windows) * 2 > len(new):
        return None
    return old_tokens + sum(count(new[ns:ne]) - count(old[os:oe]) for os, oe, ns, ne in windows)
