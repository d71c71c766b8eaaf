"""Next edit on real history cases, over LSP, against the trivial peer in the same run.

Each case (bench/next_edit_cases.py): open the file as it was, send edit 1 as
one didChange, ask `lowentropy/nextEdit` at the end of it. Scored:
- location: the first edit's first line, or the jump when there is no edit in
  this file, within 3 lines of edit 2's first changed line (knowable cases);
- exact: the document after our edits equals the one after edit 2;
- shown: any edit or jump at all (on unknowable cases this should be rare);
- latency: the client's round trip, and the server's location step
  (`locateMs` of `lowentropy/nextEditStats`).
The peer, "repeat edit 1's substitution elsewhere", replaces the next whole-word
occurrence of the word(s) edit 1 replaced (from the cursor down, then from the
top), scored the same way. Candidate recall (is edit 2 among the generator's
lines, the nearest 5, the ranker's top 5) is computed in-process on the same cases.
"""

from __future__ import annotations

import re
import time
from typing import Any

from lsprotocol import types
from next_edit_cases import Case

from lowentropy.server.next_edit import candidates, ranker
from lowentropy.server.next_edit.propagate import plan, word_span

NEAR = 3


def _position(text: str, offset: int) -> types.Position:
    """LSP position (UTF-16 columns) of a code-point offset."""
    start = text.rfind("\n", 0, offset) + 1
    units = len(text[start:offset].encode("utf-16-le")) // 2
    return types.Position(line=text.count("\n", 0, offset), character=units)


def _offset(text: str, line: int, character: int) -> int:
    """Code-point offset of an LSP position (UTF-16 columns)."""
    start = 0
    for _ in range(line):
        nxt = text.find("\n", start)
        if nxt < 0:
            return len(text)
        start = nxt + 1
    end = text.find("\n", start)
    row = text[start : len(text) if end < 0 else end]
    units = row.encode("utf-16-le")[: character * 2].decode("utf-16-le", errors="ignore")
    return start + len(units)


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    for s, e, new in sorted(edits, reverse=True):
        text = text[:s] + new + text[e:]
    return text


async def run_case(client: Any, uri: str, case: Case) -> dict[str, Any]:
    """One case over LSP: the scores of our answer."""
    text, after = case.text, case.after
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri, language_id="python", version=1, text=text)))  # fmt: skip
    s, e, new = case.edit
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=_position(text, s), end=_position(text, e)), text=new)]))  # fmt: skip
    cursor = _position(after, s + len(new))
    calls = (await client.protocol.send_request_async("lowentropy/nextEditStats", {})).modelCalls
    t0 = time.perf_counter()
    result = await client.protocol.send_request_async("lowentropy/nextEdit", {
        "textDocument": {"uri": uri, "version": 2},
        "position": {"line": cursor.line, "character": cursor.character}})  # fmt: skip
    ms = (time.perf_counter() - t0) * 1000
    stats = await client.protocol.send_request_async("lowentropy/nextEditStats", {})
    client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))  # fmt: skip
    mine = [x for x in result.edits if x.textDocument.uri == uri]
    line = None
    if mine:
        line = mine[0].range.start.line
    elif result.jump is not None and result.jump.uri == uri:
        line = result.jump.range.start.line
    edits = [
        (_offset(after, x.range.start.line, x.range.start.character),
         _offset(after, x.range.end.line, x.range.end.character), x.text)
        for x in mine
    ]  # fmt: skip
    locate_ms = stats.locateMs[-1] if getattr(stats, "locateMs", None) else float("nan")
    return {
        "shown": bool(result.edits) or result.jump is not None,
        "hit": line is not None and abs(line - case.expected_line) <= NEAR,
        "exact": bool(edits) and _apply(after, edits) == case.expected,
        "edit": bool(mine),
        "ms": ms,
        "locate_ms": locate_ms,
        "model": stats.modelCalls > calls,
    }


def baseline(case: Case) -> dict[str, Any]:
    """Repeat edit 1's substitution at the next occurrence of what it replaced."""
    start, end_b, end_a = word_span(case.text, case.after)
    old, new = case.text[start:end_b], case.after[start:end_a]
    if not old.strip() or len(old) > 300:
        return {"shown": False, "hit": False, "exact": False}
    cursor = start + len(new)
    pattern = re.compile(rf"(?<!\w){re.escape(old)}(?!\w)")
    hits = [m.start() for m in pattern.finditer(case.after) if not start <= m.start() < end_a]
    if not hits:
        return {"shown": False, "hit": False, "exact": False}
    at = next((h for h in hits if h >= cursor), hits[0])
    line = case.after.count("\n", 0, at)
    done = case.after[:at] + new + case.after[at + len(old) :]
    return {
        "shown": True,
        "hit": abs(line - case.expected_line) <= NEAR,
        "exact": done == case.expected,
    }


def recall(case: Case) -> dict[str, bool]:
    """Whether edit 2's line is among the generator's candidates (any, nearest 5) and the
    ranker's top 5 and top 1."""
    found = plan("file:///case.py", case.text, case.after, "python")
    cands = candidates.find(
        case.text,
        case.after,
        propagated=[c.start for c in found.local],
        determined=[c.start for c in found.local if c.new is not None],
    )
    ranked = [c for _, c, _ in ranker.rank(cands)]

    def right(c: candidates.Candidate) -> bool:
        return abs(c.line - case.expected_line) <= NEAR

    return {
        "any": any(right(c) for c in cands),
        "nearest5": any(right(c) for c in cands[:5]),
        "top5": any(right(c) for c in ranked[:5]),
        "top1": bool(ranked) and right(ranked[0]),
    }


def summarize(rows: list[dict[str, Any]], key: str) -> float:
    return sum(bool(r[key]) for r in rows) / len(rows) if rows else float("nan")
