"""Apply a chat answer to a file from the shell, through the real server (`lowentropy/apply`).

    lowentropy apply FILE [--write] [--wait] [--root DIR] < answer.md
    python -m lowentropy.server.apply FILE [--write] [--wait] [--root DIR] < answer.md

The answer is what a chat model wrote: a bare sketch, or prose with fenced blocks (the
block for FILE is picked as the server picks it). The server runs in this process, as for
`lowentropy complete`; the unified diff of a verified edit goes to stdout. Exit status: 0
when the edit is verified (written with --write), 1 when it is refused (the reason on
stderr, no diff), 2 for a usage error. Where the sketch needs the apply model, the server
answers within a short deadline unless --wait lets the model's rewrite take its time. The edit is the server's minimal TextEdits, applied here as an editor would.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from lsprotocol import types

from lowentropy.server.documents import utf16_to_codepoints

from ..protocol import APPLY

__all__ = ["add_arguments", "apply_answer", "main", "run"]


def apply_answer(
    path: Path, answer: str, root: Path | None = None, wait: bool = False
) -> dict[str, Any]:
    """The server's `lowentropy/apply` result for `answer` on the file at `path`."""
    from ..inprocess import _language

    document = types.TextDocumentItem(
        uri=path.resolve().as_uri(),
        language_id=_language(path),
        version=1,
        text=path.read_text(encoding="utf-8"),
    )
    return asyncio.run(_request((root or path.parent).resolve(), document, answer, wait))


async def _request(
    root: Path, document: types.TextDocumentItem, answer: str, wait: bool
) -> dict[str, Any]:
    from ..inprocess import in_process_client

    options = {"index": {"enabled": False}, "completion": {"warmDelayMs": -1, "prefetch": False}}
    async with in_process_client(root, options) as client:
        uri = document.uri
        client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=document))
        params = {"textDocument": {"uri": uri, "version": 1}, "sketch": answer, "wait": wait}
        result = await client.protocol.send_request_async(APPLY, params)
    plain = _plain(result)
    assert isinstance(plain, dict)
    return plain


def _plain(value: Any) -> Any:
    """pygls hands an untyped result back as named tuples: dicts and lists again."""
    if hasattr(value, "_asdict"):
        value = value._asdict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def apply_text_edits(text: str, edits: list[dict[str, Any]]) -> str:
    """`text` with LSP TextEdits (UTF-16 columns) applied, back to front."""
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)

    def offset(position: dict[str, int]) -> int:
        row = position["line"]
        if row >= len(lines):
            return len(text)
        return starts[row] + utf16_to_codepoints(lines[row], position["character"])

    ordered = sorted(edits, key=lambda e: offset(e["range"]["start"]), reverse=True)
    for edit in ordered:
        a, b = offset(edit["range"]["start"]), offset(edit["range"]["end"])
        text = text[:a] + edit["newText"] + text[b:]
    return text


def _edits(result: dict[str, Any]) -> list[dict[str, Any]]:
    edit = result.get("edit") or {}
    for change in edit.get("documentChanges") or []:
        return list(change.get("edits", []))
    return [e for edits in (edit.get("changes") or {}).values() for e in edits]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE")
    parser.add_argument("--write", action="store_true", help="write the verified edit to FILE")
    parser.add_argument(
        "--wait", action="store_true", help="let the apply model's rewrite take its time"
    )
    parser.add_argument("--root", type=Path, default=None, help="workspace folder (FILE's)")


def run(args: argparse.Namespace) -> int:
    """Apply the answer on stdin to `args.file`: print the diff, write it with --write."""
    if not args.file.is_file():
        print(f"lowentropy apply: no such file: {args.file}", file=sys.stderr)
        return 2
    answer = sys.stdin.read()
    if not answer.strip():
        print("lowentropy apply: the answer on stdin is empty", file=sys.stderr)
        return 2
    result = apply_answer(args.file, answer, args.root, args.wait)
    if not result.get("verified"):  # an unverified diff is not shown as if it were the edit
        print(f"lowentropy apply: nothing applied: {result.get('reason')}", file=sys.stderr)
        return 1
    sys.stdout.write(result.get("diff", ""))
    if args.write:
        text = args.file.read_text(encoding="utf-8")
        args.file.write_text(apply_text_edits(text, _edits(result)), encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lowentropy.server.apply", description=__doc__.split("\n")[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
