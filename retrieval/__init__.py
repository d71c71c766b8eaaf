"""Codebase index: walker, secrets filter, tree-sitter chunks, Merkle sync, LanceDB hybrid search.

index = Index(root, SentenceTransformerEmbedder())
await index.sync(progress=callback)        # rows searchable by full text at once
index.request_fill(priority_paths=[open])  # vectors in the background
hits = await index.search("where do we parse headers?")
"""

from lowentropy.retrieval.chunker import ChunkConfig, chunk_file
from lowentropy.retrieval.config import IndexConfig, checkout_id, default_cache_dir, workspace_id
from lowentropy.retrieval.embed_cache import EmbeddingCache, cache_key
from lowentropy.retrieval.indexer import Index
from lowentropy.retrieval.languages import language_for, tree_sitter_languages
from lowentropy.retrieval.merkle import FileLeaf, MerkleTree, TreeDiff, diff
from lowentropy.retrieval.ranking import RankingConfig, path_role, rank_candidates
from lowentropy.retrieval.search import CrossEncoderReranker, Reranker, reciprocal_rank_fusion
from lowentropy.retrieval.secrets import (
    contains_secret,
    find_secrets,
    is_secret_path,
    mask_secrets,
    redact_secrets,
)
from lowentropy.retrieval.store_errors import StoreUnavailableError
from lowentropy.retrieval.types import (
    Chunk,
    IndexStatus,
    ProgressCallback,
    SearchHit,
    SearchMode,
    Span,
    SyncProgress,
    SyncResult,
)
from lowentropy.retrieval.walker import WalkConfig, Walker, read_text

__all__ = [
    "Chunk",
    "ChunkConfig",
    "CrossEncoderReranker",
    "EmbeddingCache",
    "FileLeaf",
    "Index",
    "IndexConfig",
    "IndexStatus",
    "MerkleTree",
    "ProgressCallback",
    "RankingConfig",
    "Reranker",
    "SearchHit",
    "SearchMode",
    "Span",
    "StoreUnavailableError",
    "SyncProgress",
    "SyncResult",
    "TreeDiff",
    "WalkConfig",
    "Walker",
    "cache_key",
    "checkout_id",
    "chunk_file",
    "contains_secret",
    "default_cache_dir",
    "diff",
    "find_secrets",
    "is_secret_path",
    "language_for",
    "mask_secrets",
    "path_role",
    "rank_candidates",
    "read_text",
    "reciprocal_rank_fusion",
    "redact_secrets",
    "tree_sitter_languages",
    "workspace_id",
]
