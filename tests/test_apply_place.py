"""Apply never verifies an edit at the wrong one of two twin definitions.

The shape (issue 14, the one wrong edit the packaged model made on the chat held-out set): a
file with two classes whose methods share a name and most lines, one of them with a line more
(`Reader.open`, `Writer.open`). A sketch adds a parameter and two lines after the header,
shown directly above a kept line both methods have. Placement cannot tell the twins apart for
certain and hands the model the one with the extra line; the model writes the sketch there,
dropping that line (the sketch shows the header right above the kept line, which reads as a
deletion). Every other check passed that. The rule: a line deleted between P and Q, where
the original has P directly above Q elsewhere, is not a proven edit (`verify_place.py`); a
merge that breaks it is refused before any model (which would get the same place).
"""

from __future__ import annotations

from typing import Any

import pytest_asyncio
from conftest import QUIET_TAB, Docs, lsp_client

from lowentropy.server.apply import verify
from lowentropy.server.apply.__main__ import _edits, _plain, apply_text_edits

SOURCE = '''"""Record files: a reader and a writer over the same framing."""

import os


class RecordReader:
    """Reads length-prefixed records from a file object."""

    def open(self, path):
        self._position = 0
        self._records_seen = 0
        self._stream = open(path, "rb")

    def close(self):
        self._stream.close()


class RecordWriter:
    """Writes length-prefixed records to a file object."""

    def open(self, path):
        self._created = not os.path.exists(path)
        self._position = 0
        self._records_seen = 0
        self._stream = open(path, "ab")

    def close(self):
        self._stream.flush()
        self._stream.close()
'''
SKETCH = """# ... existing code ...
    def open(self, path, verbose=False):
        if verbose:
            print("open: called")
        self._position = 0
# ... existing code ...
"""
NEW_HEAD = '    def open(self, path, verbose=False):\n        if verbose:\n            print("open: called")\n'
WRONG_TWIN = SOURCE.replace(
    "    def open(self, path):\n        self._created = not os.path.exists(path)\n", NEW_HEAD
)
FITS_ELSEWHERE = "elsewhere the original has those two lines together"


def test_the_wrong_twin_edit_is_refused_with_its_reason() -> None:
    """Exactly what the model wrote on the held-out case, in a file of our own."""
    check = verify(SOURCE, WRONG_TWIN, SKETCH, language="python")
    assert not check.ok
    assert check.reason is not None and FITS_ELSEWHERE in check.reason, check.reason
    assert "'self._created = not os.path.exists(path)'" in check.reason
    # The same deletion where no twin has the two lines together is a proven edit.
    only_writer = SOURCE.replace(
        "    def open(self, path):\n        self._position = 0\n",
        "    def open(self, path):\n        self._at = 0\n",
    )
    sketch = SKETCH.replace("self._position = 0", "self._records_seen = 0")
    edited = only_writer.replace(
        "    def open(self, path):\n        self._created = not os.path.exists(path)\n"
        "        self._position = 0\n",
        NEW_HEAD,
    )
    assert verify(only_writer, edited, sketch, language="python").ok


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def qwen(tmp_path_factory: Any) -> Any:
    """The real server with the packaged default model (Qwen2.5-Coder-0.5B) as `apply`."""
    root = tmp_path_factory.mktemp("apply_place")
    options = {**QUIET_TAB, "apply": {"modelPath": "qwen2.5-coder-0.5b"}}
    async with lsp_client(root, options) as client:
        yield client, Docs(client, root)


async def test_a_sketch_that_fits_a_twin_without_deletion_is_refused_at_once(qwen: Any) -> None:
    """Through the real server: placement reads the marker after part of the body as the
    rest kept, finds RecordWriter.open, and its merge deletes `self._created = ...`; the
    file has the header right above `self._position = 0` in RecordReader. Refused without
    the model (which would get RecordWriter.open and write the same edit there: it did, and
    it was verified, before this check)."""
    client, docs = qwen
    uri = docs.open(SOURCE, "records.py")
    params = {"textDocument": {"uri": uri, "version": 1}, "sketch": SKETCH}
    result = await client.protocol.send_request_async("lowentropy/apply", params)
    result = result._asdict() if hasattr(result, "_asdict") else result
    stats = result["stats"]
    stats = stats._asdict() if hasattr(stats, "_asdict") else stats
    assert not result["verified"], result["diff"]
    assert FITS_ELSEWHERE in result["reason"], result["reason"]
    assert stats["path"] == "deterministic" and stats["tokens"] == 0  # no model time spent
    # Selected, RecordReader.open is the place, and the edit is exact.
    params["range"] = {"start": {"line": 8, "character": 0}, "end": {"line": 12, "character": 0}}
    result = _plain(await client.protocol.send_request_async("lowentropy/apply", params))
    assert result["verified"], result["reason"]
    expected = SOURCE.replace("    def open(self, path):\n", NEW_HEAD, 1)
    assert apply_text_edits(SOURCE, _edits(result)) == expected
