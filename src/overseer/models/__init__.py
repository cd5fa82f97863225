"""The model layer shared by every pillar: name a model, load it, extract features, score, generate."""

from overseer.models._backend import (
    Backend,
    CapabilityError,
    backend,
    backend_identity,
    get_backend,
    split_spec,
)
from overseer.models._cache import ActivationCache, activation_cache_dir
from overseer.models._cache_admin import (
    CACHE_NAMES,
    BadEntry,
    CacheInfo,
    VerifyReport,
    cache_info,
    cache_paths,
    clear_caches,
    verify_caches,
)
from overseer.models._catalog import (
    LADDER,
    PACKAGED_MODELS,
    ModelSpec,
    Rung,
    cache_root,
    known_model_names,
    resolve_model,
)
from overseer.models._classifier import (
    ClassifierConfig,
    ClassifierFit,
    SequenceClassifier,
    TrainingDivergedError,
    fit_classifier,
)
from overseer.models._endpoint import EndpointBackend, normalize_base_url
from overseer.models._features import POOLINGS, extract_features, pool
from overseer.models._generate import GenerateConfig, Generation
from overseer.models._lm import (
    HUMAN_ASSISTANT,
    ROLES,
    Chat,
    HFBackend,
    LMBackend,
    OptionScores,
    format_chat,
    generate,
    has_chat_template,
    human_assistant,
    score_options,
)
from overseer.models._load import LoadedModel, load_model
from overseer.models._mock import MockBackend

__all__ = [
    "ActivationCache",
    "BadEntry",
    "CACHE_NAMES",
    "CacheInfo",
    "VerifyReport",
    "activation_cache_dir",
    "cache_info",
    "cache_paths",
    "clear_caches",
    "verify_caches",
    "ClassifierConfig",
    "ClassifierFit",
    "SequenceClassifier",
    "TrainingDivergedError",
    "fit_classifier",
    "Backend",
    "CapabilityError",
    "GenerateConfig",
    "Generation",
    "MockBackend",
    "ROLES",
    "backend",
    "backend_identity",
    "get_backend",
    "split_spec",
    "HUMAN_ASSISTANT",
    "LADDER",
    "PACKAGED_MODELS",
    "POOLINGS",
    "LoadedModel",
    "ModelSpec",
    "Rung",
    "Chat",
    "EndpointBackend",
    "HFBackend",
    "LMBackend",
    "OptionScores",
    "cache_root",
    "extract_features",
    "format_chat",
    "generate",
    "has_chat_template",
    "human_assistant",
    "known_model_names",
    "load_model",
    "normalize_base_url",
    "pool",
    "resolve_model",
    "score_options",
]
