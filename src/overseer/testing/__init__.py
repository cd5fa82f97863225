"""Helpers for testing code that talks to models: a loopback OpenAI-compatible server with fault knobs.

They live outside :mod:`overseer.models` because no run uses them; tests, benchmarks and demos do.
"""

from overseer.testing.server import OpenAICompatServer

__all__ = ["OpenAICompatServer"]
