"""The lowentropy language server: LSP features over prompts/, models/ and retrieval/."""

from .app import LowEntropyServer, __version__, create_server

__all__ = ["LowEntropyServer", "__version__", "create_server"]
