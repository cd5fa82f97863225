"""The model layer shared by every pillar: name a model, load it, extract features, score, generate."""

from overseer._lazy import lazy_exports
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
    CACHE_ENVIRONMENT,
    CACHE_NAMES,
    BadEntry,
    CacheInfo,
    VerifyReport,
    cache_info,
    cache_paths,
    clear_caches,
    count_label,
    verify_caches,
)
from overseer.models._catalog import (
    LADDER,
    ORGANISM_PREFIX,
    PACKAGED_MODELS,
    ModelSpec,
    Rung,
    cache_root,
    known_model_names,
    organism_path,
    organisms_dir,
    resolve_model,
)
from overseer.models._checks import check_device, check_local_models, check_model_specs
from overseer.models._classifier import SequenceClassifier
from overseer.models._classifier_config import (
    CLASSIFIER_POOLINGS,
    LIKELIHOOD,
    ClassifierConfig,
    ClassifierFit,
    TrainingDivergedError,
)
from overseer.models._classifier_train import fit_classifier
from overseer.models._devices import bf16_supported, free_accelerator_memory
from overseer.models._endpoint import EndpointBackend, EndpointClient, normalize_base_url
from overseer.models._features import POOLINGS, extract_features, pool, token_features
from overseer.models._finetune import CARD_FILE, SCHEDULERS, LMTrainConfig, finetune_lm, read_card, rows_digest
from overseer.models._generate import GenerateConfig, Generation
from overseer.models._guarded import Guarded, RetryableError
from overseer.models._lm import (
    HUMAN_ASSISTANT,
    ROLES,
    Chat,
    HFBackend,
    LMBackend,
    OptionScores,
    encode_prompt,
    format_chat,
    generate,
    has_chat_template,
    human_assistant,
    score_options,
)
from overseer.models._load import LoadedModel, check_model, load_model, model_kind
from overseer.models._lora import lora_config
from overseer.models._mock import MockBackend
from overseer.models._next_token import SCORING_MODES, ScoringSupport, TopTokens, parse_top_logprobs
from overseer.models._tiny import build_tiny_causal_lm

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
    "CACHE_ENVIRONMENT",
    "count_label",
    "check_device",
    "check_local_models",
    "check_model",
    "check_model_specs",
    "CARD_FILE",
    "LMTrainConfig",
    "finetune_lm",
    "read_card",
    "rows_digest",
    "ORGANISM_PREFIX",
    "model_kind",
    "organism_path",
    "organisms_dir",
    "build_tiny_causal_lm",
    "OverseerModelAPI",
    "shared_runner",
    "ClassifierConfig",
    "ClassifierFit",
    "SequenceClassifier",
    "TrainingDivergedError",
    "fit_classifier",
    "EndpointClient",
    "Guarded",
    "RetryableError",
    "bf16_supported",
    "free_accelerator_memory",
    "SCHEDULERS",
    "encode_prompt",
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
    "CLASSIFIER_POOLINGS",
    "LIKELIHOOD",
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
    "token_features",
    "resolve_model",
    "score_options",
    "SCORING_MODES",
    "ScoringSupport",
    "TopTokens",
    "parse_top_logprobs",
]

# The inspect_ai provider needs inspect_ai (an optional extra): imported on first use.
lazy_exports(__name__, {"OverseerModelAPI": "_inspect", "shared_runner": "_inspect"})
