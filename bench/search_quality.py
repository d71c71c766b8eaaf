"""Search quality on real history: the project's index against plain BM25 over the same chunks.

For each case of `search_cases.json` (a commit's message as the query, the tree
at its parent as the workspace; see `search_cases.py`) the tree is indexed with
the real `Index` (tree-sitter chunks, all-MiniLM-L6-v2 vectors, LanceDB) and
searched with limit 10 in each mode: full text only, vector only and hybrid (as
shipped). Beside them, in the same run, a plain Okapi BM25 (k1 1.5, b 0.75,
lower-cased `\\w+` words) ranks the same chunk rows. A hit finds a gold file
when its path is one, and a gold symbol when its lines overlap the symbol's in
the parent. Recall@k per case is the share of the case's gold found in the
first k hits, averaged over the cases.

A second peer, `bm25-file`, ranks whole files (their chunks' text joined) for
the files figure only. Bars (issue 16), on the held-aside split only: hybrid
files R@5 >= 1.1x the better BM25's and symbols R@5 >= 1.3x chunk BM25's. Tune
on `--split dev`; `--split heldout` once.

Trees are exported once into `--cache` (default `~/.cache/lowentropy/bench-search`),
where one LanceDB database also keeps the embedding cache between runs, so a
rerun embeds nothing it has seen; each run rewrites the chunk rows, so a change
to chunking or full-text words is always measured. First run: ~15 min on 2 cores
(embedding); later runs ~2-3 min per split.

With `--rewrite`, the packaged coder model (Qwen2.5-Coder-0.5B-Instruct, the
embedded default, greedy) rewrites each query into likely identifiers
(`retrieval/query_rewrite.py`), and full text, vector and hybrid are measured
again with them (`+rw` rows) in the same run; the bars then apply to
`hybrid+rw`. Rewrite latency (p50/p95, one model call per query) is printed.

With `--rerank`, the same model reorders the hybrid top 20 by how likely it is
to name each hit's symbol for the query (`retrieval/model_rerank.py`), and
`hybrid+rr` is measured in the same run (the bars then apply to it), with
rerank latency (p50/p95, one scoring call per query). `--rr-grid 0:0.5,1:2`
adds a row per other (alpha, weight) of the mix, from the same model scores
(tuning, on dev only).

Usage: python bench/search_quality.py [--split dev|heldout|all] [--rewrite] [--rerank]
    [--rr-grid ALPHA:WEIGHT,...] [--per-case] [--show N]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

sys.path.insert(0, str(Path(__file__).parent))

from search_cases import DEFAULT_MIRRORS, Case, git_dir_for, load, materialise  # noqa: E402

from lowentropy.models.embeddings import SentenceTransformerEmbedder  # noqa: E402
from lowentropy.retrieval import Index, IndexConfig  # noqa: E402
from lowentropy.retrieval.model_rerank import ModelReranker, mix  # noqa: E402
from lowentropy.retrieval.query_rewrite import QueryRewriter  # noqa: E402
from lowentropy.retrieval.ranking import RankingConfig  # noqa: E402
from lowentropy.retrieval.search import Searcher  # noqa: E402

# bm25-file ranks whole files (their chunks' text joined): a files-only peer, its
# hits name no lines, so it finds no symbol by construction.
SYSTEMS = ("bm25", "bm25-file", "fulltext", "vector", "hybrid")
REWRITTEN = ("fulltext+rw", "vector+rw", "hybrid+rw")  # with --rewrite
RERANKED = "hybrid+rr"  # with --rerank; a tuning grid adds hybrid+rr<alpha>:<weight>
LIMIT = 10
FILES_BAR = 1.1
SYMBOLS_BAR = 1.3
DEFAULT_CACHE = Path.home() / ".cache" / "lowentropy" / "bench-search"
_WORD = re.compile(r"\w+")


@attrs.frozen
class Hit:
    path: str
    start_line: int
    end_line: int  # inclusive


# ---------------------------------------------------------------- BM25 peer


def plain_words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


class BM25:
    """Okapi BM25 over chunk rows, with Lucene's non-negative idf."""

    def __init__(self, rows: Sequence[tuple[Hit, str]], k1: float = 1.5, b: float = 0.75) -> None:
        self.hits = [hit for hit, _ in rows]
        self.docs = [Counter(plain_words(text)) for _, text in rows]
        self.lengths = [sum(d.values()) for d in self.docs]
        self.avg = sum(self.lengths) / max(1, len(self.lengths))
        df: Counter[str] = Counter()
        for d in self.docs:
            df.update(d.keys())
        n = len(self.docs)
        self.idf = {w: math.log((n - f + 0.5) / (f + 0.5) + 1.0) for w, f in df.items()}
        self.k1, self.b = k1, b

    def search(self, query: str, limit: int) -> list[Hit]:
        terms = [w for w in set(plain_words(query)) if w in self.idf]
        scores: list[tuple[float, int]] = []
        for i, (doc, length) in enumerate(zip(self.docs, self.lengths, strict=True)):
            norm = self.k1 * (1 - self.b + self.b * length / self.avg)
            s = sum(
                self.idf[w] * doc[w] * (self.k1 + 1) / (doc[w] + norm) for w in terms if w in doc
            )
            if s > 0:
                scores.append((s, i))
        scores.sort(key=lambda p: (-p[0], p[1]))
        return [self.hits[i] for _, i in scores[:limit]]


def store_rows(index: Index) -> list[tuple[Hit, str]]:
    table = index.store.table.search().select(["path", "start_line", "end_line", "text"])
    rows: list[dict[str, Any]] = table.limit(None).to_list()
    rows.sort(key=lambda r: (r["path"], r["start_line"]))  # ties break the same every run
    return [(Hit(r["path"], r["start_line"], r["end_line"]), r["text"]) for r in rows]


# ---------------------------------------------------------------- scoring


def found(case: Case, hits: Sequence[Hit], k: int) -> tuple[float, float]:
    """(share of gold files, share of gold symbols) among the first k hits."""
    head = hits[:k]
    paths = {h.path for h in head}
    files = sum(1 for f in case.files if f in paths) / len(case.files)
    symbols = sum(
        1
        for s in case.symbols
        if any(
            h.path == s.path and h.start_line <= s.end_line and h.end_line >= s.start_line
            for h in head
        )
    ) / len(case.symbols)
    return files, symbols


def first_rank(case: Case, hits: Sequence[Hit]) -> str:
    """Rank of the first hit in a gold file, '-' when none in the list."""
    for i, h in enumerate(hits, start=1):
        if h.path in case.files:
            return str(i)
    return "-"


@attrs.define
class Tally:
    files5: list[float] = attrs.Factory(list)
    symbols5: list[float] = attrs.Factory(list)
    files10: list[float] = attrs.Factory(list)
    symbols10: list[float] = attrs.Factory(list)

    def add(self, case: Case, hits: Sequence[Hit]) -> tuple[float, float]:
        f5, s5 = found(case, hits, 5)
        f10, s10 = found(case, hits, 10)
        self.files5.append(f5)
        self.symbols5.append(s5)
        self.files10.append(f10)
        self.symbols10.append(s10)
        return f5, s5

    @staticmethod
    def mean(values: Sequence[float]) -> float:
        return sum(values) / max(1, len(values))


# ---------------------------------------------------------------- run


async def run_case(
    case: Case,
    root: Path,
    embedder: SentenceTransformerEmbedder,
    db_uri: str,
    state: Path,
    config: IndexConfig,
    rewriter: QueryRewriter | None = None,
    rewrite_seconds: list[float] | None = None,
    reranker: ModelReranker | None = None,
    rerank_seconds: list[float] | None = None,
    rr_grid: Sequence[tuple[float, float]] = (),
) -> dict[str, list[Hit]]:
    table = f"chunks_{case.parent[:12]}"
    config = attrs.evolve(config, db_uri=db_uri, cache_dir=str(state), table=table)
    index = Index(root, embedder, config)
    try:
        await index.sync()
        await index.fill_vectors()
        rows = store_rows(index)
        out = {"bm25": BM25(rows).search(case.query, LIMIT)}
        files: dict[str, list[str]] = {}
        for hit, text in rows:
            files.setdefault(hit.path, []).append(text)
        whole = [(Hit(path, -1, -2), "\n".join(texts)) for path, texts in files.items()]
        out["bm25-file"] = BM25(whole).search(case.query, LIMIT)
        for mode in ("fulltext", "vector", "hybrid"):
            hits = await index.search(case.query, LIMIT, mode)  # type: ignore[arg-type]
            out[mode] = [Hit(h.rel_path, h.span.start_line, h.span.end_line) for h in hits]
        if reranker is not None:
            head = await index.search(case.query, reranker.top, "hybrid")
            started = time.perf_counter()
            await reranker.scores(case.query, head)  # timed alone; orders below hit its cache
            if rerank_seconds is not None:
                rerank_seconds.append(time.perf_counter() - started)
            for name, alpha, weight in [(RERANKED, reranker.alpha, reranker.weight)] + [
                (f"{RERANKED}{a:g}:{w:g}", a, w) for a, w in rr_grid
            ]:
                order = await reranker.order(case.query, head, alpha)
                ranked = [head[i] for i in mix(len(head), order, weight)][:LIMIT]
                out[name] = [Hit(h.rel_path, h.span.start_line, h.span.end_line) for h in ranked]
        if rewriter is not None:
            started = time.perf_counter()
            await rewriter.terms(case.query)  # timed alone; the searches below hit its cache
            if rewrite_seconds is not None:
                rewrite_seconds.append(time.perf_counter() - started)
            searcher = Searcher(
                index.store,
                embedder,
                index.root,
                rrf_k=config.rrf_k,
                candidates=config.candidates,
                ranking=config.ranking,
                rewriter=rewriter,
            )
            for mode in ("fulltext", "vector", "hybrid"):
                hits = await searcher.search(case.query, LIMIT, mode)  # type: ignore[arg-type]
                out[f"{mode}+rw"] = [
                    Hit(h.rel_path, h.span.start_line, h.span.end_line) for h in hits
                ]
        await asyncio.to_thread(index.store.drop)  # rows are rewritten every run anyway
        return out
    finally:
        await index.aclose()


def report(tallies: dict[str, Tally], split: str, n: int) -> bool:
    print(f"\n{split}: {n} cases, limit {LIMIT}")
    print(f"  {'system':13s} files R@5  symbols R@5  files R@10  symbols R@10")
    for name in tallies:
        t = tallies[name]
        s5, s10 = (
            ("-", "-")
            if name == "bm25-file"
            else (f"{t.mean(t.symbols5):.3f}", f"{t.mean(t.symbols10):.3f}")
        )
        print(
            f"  {name:13s} {t.mean(t.files5):9.3f}  {s5:>11s}  {t.mean(t.files10):10.3f}  {s10:>12s}"
        )
    ok = True
    mine_name = next(n for n in (RERANKED, "hybrid+rw", "hybrid") if n in tallies)
    ours = tallies[mine_name]
    # Files against the better BM25 (chunks or whole files), symbols against chunks.
    files_peer = max(("bm25", "bm25-file"), key=lambda n: tallies[n].mean(tallies[n].files5))
    for label, mine, peer_name, peer, bar in (
        ("files R@5", ours.mean(ours.files5), files_peer,
         tallies[files_peer].mean(tallies[files_peer].files5), FILES_BAR),
        ("symbols R@5", ours.mean(ours.symbols5), "bm25",
         tallies["bm25"].mean(tallies["bm25"].symbols5), SYMBOLS_BAR),
    ):  # fmt: skip
        ratio = mine / peer if peer else math.inf
        passed = ratio >= bar
        ok &= passed
        verdict = ("PASS" if passed else "FAIL") if split == "heldout" else "(dev)"
        print(
            f"{verdict}  {mine_name} {label} {mine:.3f} = {ratio:.2f}x {peer_name}'s {peer:.3f} "
            f"(bar {bar}x)"
        )
    return ok or split != "heldout"


def _print_case(case: Case, results: dict[str, list[Hit]], cells: list[str], show: int) -> None:
    subject = case.query.splitlines()[0][:60]
    print(f"{case.repo.split('/')[1][:10]:10s} {case.commit[:8]} {'  '.join(cells)}  {subject}")
    if show:
        print(f"  gold: {', '.join(case.files)}; {', '.join(s.name for s in case.symbols)}")
        for name in results:
            shown = ", ".join(
                f"{h.path.rsplit('/', 1)[-1]}:{h.start_line + 1}" for h in results[name][:show]
            )
            print(f"    {name:11s} {shown}")


def clones_missing(mirrors: Path = DEFAULT_MIRRORS) -> list[str]:
    """Repositories of the cases with no local clone under `mirrors`."""
    return [r for r in sorted({c.repo for c in load()}) if not git_dir_for(r, mirrors).is_dir()]


async def evaluate(
    embedder: SentenceTransformerEmbedder,
    split: str,
    *,
    cache: Path = DEFAULT_CACHE,
    mirrors: Path = DEFAULT_MIRRORS,
    config: IndexConfig | None = None,
    repo: str = "",
    per_case: bool = False,
    show: int = 0,
    rewriter: QueryRewriter | None = None,
    reranker: ModelReranker | None = None,
    rr_grid: Sequence[tuple[float, float]] = (),
) -> bool:
    """Index and search every case of `split`; print the table; False when a bar fails."""
    config = config or IndexConfig()
    cases = [c for c in load(split=None if split == "all" else split) if repo in c.repo]
    print(f"{len(cases)} cases; {config.ranking}, candidates {config.candidates}")
    db_uri = str(cache / "lancedb")
    systems = SYSTEMS + (REWRITTEN if rewriter is not None else ())
    if reranker is not None:
        systems += (RERANKED, *(f"{RERANKED}{a:g}:{w:g}" for a, w in rr_grid))
    tallies = {name: Tally() for name in systems}
    rewrite_seconds: list[float] = []
    rerank_seconds: list[float] = []
    with tempfile.TemporaryDirectory(prefix="lowentropy-bench-search-") as tmp:
        for case in cases:
            root = await asyncio.to_thread(materialise, case, cache / "trees", mirrors)
            results = await run_case(
                case,
                root,
                embedder,
                db_uri,
                Path(tmp),
                config,
                rewriter,
                rewrite_seconds,
                reranker,
                rerank_seconds,
                rr_grid,
            )
            cells = []
            for name in systems:
                f5, s5 = tallies[name].add(case, results[name])
                cells.append(f"{name} {f5:.2f}/{s5:.2f}@{first_rank(case, results[name])}")
            if per_case or show:
                _print_case(case, results, cells, show)
    for label, seconds in (("query rewrite", rewrite_seconds), ("model rerank", rerank_seconds)):
        if seconds:
            times = sorted(seconds)
            p50, p95 = times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.95))]
            print(f"{label}: {len(times)} queries, p50 {p50:.2f} s, p95 {p95:.2f} s")
    return report(tallies, split, len(cases))


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("dev", "heldout", "all"), default="dev")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--mirrors", type=Path, default=DEFAULT_MIRRORS)
    parser.add_argument("--per-case", action="store_true", help="a line per case and system")
    parser.add_argument("--show", type=int, default=0, help="print the first N hits per system")
    parser.add_argument("--repo", default="", help="only cases of repositories containing this")
    parser.add_argument(
        "--ranking", default="", help="tuning: RankingConfig fields, e.g. test=0.5,named=2"
    )
    parser.add_argument("--candidates", type=int, default=IndexConfig().candidates)
    parser.add_argument(
        "--rewrite", action="store_true", help="also measure with the coder model's query rewrite"
    )
    parser.add_argument(
        "--rerank", action="store_true", help="also measure the coder model's rerank of the top 20"
    )
    parser.add_argument(
        "--rr-grid", default="", help="tuning: extra rerank (alpha:weight) rows, e.g. 0:0.5,1:2"
    )
    args = parser.parse_args()
    fields = dict(kv.split("=") for kv in args.ranking.split(",") if kv)
    ranking = RankingConfig(**{k: float(v) for k, v in fields.items()})

    started = time.perf_counter()
    embedder = SentenceTransformerEmbedder()
    await embedder.embed(["warm up"])
    onnx = await asyncio.to_thread(embedder.wait_for_onnx)
    print(f"query embeddings: {'ONNX Runtime' if onnx else 'torch'}")
    rewriter = engine = reranker = None
    if args.rewrite or args.rerank:
        from lowentropy.models.embedded import EmbeddedEngine

        engine = EmbeddedEngine.shared()  # the packaged default coder model
        print(f"query rewrite / rerank: {engine.name}, greedy")

        async def generator() -> EmbeddedEngine:
            assert engine is not None
            return engine

        if args.rewrite:
            rewriter = QueryRewriter(generator)
        if args.rerank:
            reranker = ModelReranker(generator)
            print(
                f"model rerank: top {reranker.top}, alpha {reranker.alpha}, weight {reranker.weight}"
            )
    ok = await evaluate(
        embedder,
        args.split,
        cache=args.cache,
        mirrors=args.mirrors,
        config=IndexConfig(ranking=ranking, candidates=args.candidates),
        repo=args.repo,
        per_case=args.per_case,
        show=args.show,
        rewriter=rewriter,
        reranker=reranker,
        rr_grid=[
            (float(a), float(w)) for a, w in (p.split(":") for p in args.rr_grid.split(",") if p)
        ],
    )
    if engine is not None:
        await engine.aclose()
    print(
        f"[search quality: {time.perf_counter() - started:.0f} s, "
        f"{embedder.stats.texts} texts embedded]"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
