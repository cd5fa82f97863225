"""The model layer shared by every pillar: load a model, extract features, score, generate."""

from overseer.models._features import POOLINGS, extract_features, pool
from overseer.models._load import (
    LADDER,
    PACKAGED_MODELS,
    LoadedModel,
    ModelSpec,
    Rung,
    cache_root,
    known_model_names,
    load_model,
    resolve_model,
)

__all__ = [
    "LADDER",
    "PACKAGED_MODELS",
    "POOLINGS",
    "LoadedModel",
    "ModelSpec",
    "Rung",
    "cache_root",
    "extract_features",
    "known_model_names",
    "load_model",
    "pool",
    "resolve_model",
]
