"""Overseer: scalable-oversight experiments that run on a laptop CPU and scale to GPUs."""

from overseer.errors import OverseerError

__version__ = "0.1.0"
__all__ = ["OverseerError", "__version__"]
