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
from overseer.models._classifier import SequenceClassifier
from overseer.models._classifier_config import ClassifierConfig, ClassifierFit, TrainingDivergedError
from overseer.models._classifier_train import fit_classifier
from overseer.models._endpoint import EndpointBackend, normalize_base_url
from overseer.models._features import POOLINGS, extract_features, pool
from overseer.models._finetune import LMTrainConfig, finetune_lm
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
from overseer.models._lora import lora_config
from overseer.models._mock import MockBackend
from overseer.models._serve import OpenAICompatServer

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
    "LMTrainConfig",
    "finetune_lm",
    "lora_config",
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
    "OpenAICompatServer",
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
