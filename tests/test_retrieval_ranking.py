"""Code-aware ranking of hybrid search: file roles, and questions that ask for tests or docs.

The end-to-end tests index a small project written here (source, its tests, a
changelog and docs that repeat the source's words, as real projects do) with
real LanceDB and the real all-MiniLM-L6-v2.
"""

from __future__ import annotations

import pytest
import pytest_asyncio

from lowentropy.models.embeddings import SentenceTransformerEmbedder
from lowentropy.retrieval import Index, IndexConfig, RankingConfig, path_role, rank_candidates
from lowentropy.retrieval.ranking import code_names

SOURCE = '''\
"""Signing values with a secret key."""

import hashlib
import hmac


class Signer:
    def __init__(self, secret_key, salt="itsdangerous.Signer"):
        self.secret_key = secret_key
        self.salt = salt

    def get_signature(self, value):
        mac = hmac.new(self.secret_key, self.salt + value, hashlib.sha1)
        return mac.hexdigest()

    def verify_signature(self, value, sig):
        return hmac.compare_digest(sig, self.get_signature(value))
'''
TESTS = """\
from project.signer import Signer


def test_signer_verify_signature_with_secret_key():
    signer = Signer(b"secret key")
    sig = signer.get_signature(b"value")
    assert signer.verify_signature(b"value", sig)


def test_signer_rejects_a_wrong_signature_for_the_secret_key():
    signer = Signer(b"secret key")
    assert not signer.verify_signature(b"value", b"wrong signature")
"""
CHANGELOG = """\
# Changes

## 2.0

- Signer: verify signature with the secret key in constant time.
- Signer accepts a secret key as bytes or str; get signature returns hex.
"""
ENCODING = '''\
import base64


def base64_encode(value):
    """Encode with URL-safe base64 and strip the padding; padding is never sent."""
    return base64.urlsafe_b64encode(value).rstrip(b"=")


def base64_decode(value):
    value += b"=" * (-len(value) % 4)
    return base64.urlsafe_b64decode(value)
'''
DOCS = """\
# Signing

Create a `Signer` with your secret key, call get signature on a value, and
verify signature on the way back. The secret key must stay secret.
"""


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def project(
    tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder
) -> Index:
    root = tmp_path_factory.mktemp("ranking") / "ws"
    for rel, text in {
        "src/project/signer.py": SOURCE,
        "src/project/encoding.py": ENCODING,
        "tests/test_signer.py": TESTS,
        "CHANGELOG.md": CHANGELOG,
        "docs/signing.md": DOCS,
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    index = Index(root, embedder, IndexConfig(cache_dir=str(root.parent / "state")))
    await index.sync()
    await index.fill_vectors()
    return index


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("src/pkg/signer.py", "source"),
        ("pkg/testing_utils.py", "source"),  # a name that merely starts with "test"
        ("tests/test_signer.py", "test"),
        ("pkg/tests/helpers.py", "test"),
        ("test_signer.py", "test"),
        ("web/signer.test.ts", "test"),
        ("go/signer_test.go", "test"),
        ("conftest.py", "test"),
        ("CHANGELOG.md", "docs"),
        ("CHANGES", "docs"),
        ("docs/conf.py", "docs"),
        ("README.rst", "docs"),
        (".github/PULL_REQUEST_TEMPLATE.md", "docs"),
        ("tox.ini", "config"),
        (".pre-commit-config.yaml", "config"),
        ("pyproject.toml", "config"),
    ],
)
def test_path_role(path: str, role: str) -> None:
    assert path_role(path) == role


def test_roles_scale_fused_scores_unless_the_query_asks_for_them() -> None:
    fused = [({"path": "CHANGELOG.md"}, 0.03), ({"path": "tests/test_a.py"}, 0.025),
             ({"path": "src/a.py"}, 0.02)]  # fmt: skip
    config = RankingConfig(test=0.5, docs=0.25)
    ranked = rank_candidates("where is the value signed", fused, config)
    assert [(r["path"], s) for r, s in ranked] == [
        ("src/a.py", pytest.approx(0.02)),
        ("tests/test_a.py", pytest.approx(0.0125)),
        ("CHANGELOG.md", pytest.approx(0.0075)),
    ]
    ranked = rank_candidates("the tests of signing", fused, config)
    assert [r["path"] for r, _ in ranked] == ["tests/test_a.py", "src/a.py", "CHANGELOG.md"]
    ranked = rank_candidates("what the changelog says", fused, config)
    assert [r["path"] for r, _ in ranked][0] == "CHANGELOG.md"
    # all roles weighted alike: the fused order, unchanged
    same = RankingConfig(test=1.0, docs=1.0, config=1.0, named=1.0)
    assert [r for r, _ in rank_candidates("x", fused, same)] == [r for r, _ in fused]


async def test_a_source_question_finds_source_before_tests_and_prose(project: Index) -> None:
    query = "verify signature with the secret key"
    # Each side alone ranks a test or the prose first: they repeat the words.
    for mode in ("fulltext", "vector"):
        raw = await project.search(query, 5, mode)  # type: ignore[arg-type]
        assert path_role(raw[0].rel_path) != "source", (mode, [h.rel_path for h in raw])
    hits = await project.search(query, 5)
    assert hits[0].rel_path == "src/project/signer.py"
    assert hits[0].symbol == "Signer"  # a small class is one chunk
    assert "def verify_signature" in hits[0].text
    # the same search with every role weighted alike puts a test or prose first
    flat = Index(
        project.root,
        project.embedder,
        IndexConfig(
            cache_dir=project.config.cache_dir,
            ranking=RankingConfig(test=1.0, docs=1.0, config=1.0, named=1.0),
        ),
    )
    flat_hits = await flat.search(query, 5)
    assert path_role(flat_hits[0].rel_path) != "source"


async def test_a_question_about_tests_finds_the_tests(project: Index) -> None:
    hits = await project.search("tests that verify signature with the secret key", 5)
    assert hits[0].rel_path == "tests/test_signer.py"


def test_code_names_in_a_question() -> None:
    assert code_names("Improve URL.absolute and add it to repr") == {"URL", "absolute"}
    assert code_names("Correctly unpickle WriteLogger (#811)") == {"WriteLogger"}
    assert code_names("fix: errors from utils.from_timestamp") == {"utils", "from_timestamp"}
    assert code_names("Remove Field._creation_index") == {"Field", "_creation_index"}
    assert code_names("where are Signed values checked? And URLs.") == set()


def test_a_named_symbol_is_raised() -> None:
    fused = [({"path": "a.py", "symbol": "Signer.sign"}, 0.03),
             ({"path": "a.py", "symbol": "Signer.verify_signature"}, 0.02),
             ({"path": "b.py", "symbol": "verify"}, 0.025)]  # fmt: skip
    ranked = rank_candidates("check verify_signature", fused, RankingConfig(named=2.0))
    assert [(r["symbol"], s) for r, s in ranked] == [
        ("Signer.verify_signature", pytest.approx(0.04)),
        ("Signer.sign", pytest.approx(0.03)),
        ("verify", pytest.approx(0.025)),
    ]


async def test_a_question_naming_a_function_finds_it_first(project: Index) -> None:
    """encoding.py: base64_encode's docstring talks about padding; the question names
    base64_decode, which handles it."""
    query = "restore the padding in base64_decode"
    hits = await project.search(query, 5)
    assert hits[0].symbol == "base64_decode"
    flat = Index(
        project.root,
        project.embedder,
        IndexConfig(cache_dir=project.config.cache_dir, ranking=RankingConfig(named=1.0)),
    )
    assert (await flat.search(query, 5))[0].symbol == "base64_encode"
