"""Load a resolved model: hub id, local directory, trained adapter or GGUF file, on a checked device.

Names resolve in :mod:`overseer.models._catalog`, the hub's reachability is checked in
:mod:`overseer.models._hub` and devices in :mod:`overseer.models._devices`; this module loads the
weights (de-quantising a GGUF file once and caching it as safetensors), keeps a ladder rung's first
blocks, and merges an adapter onto its base. Specs that name other backends (``openai/MODEL@URL``,
``mock``) go through :func:`overseer.models.get_backend`, which hands local specs to this module.

Heavy imports (torch, transformers) happen inside functions so that importing overseer is cheap.
"""



from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from overseer._storage import atomic_directory
from overseer.errors import OverseerError, unknown
from overseer.models._catalog import (
    ModelSpec,
    cache_root,
    known_model_names,
    resolve_model,
)
from overseer.models._devices import resolve_device
from overseer.models._hub import offline_snapshot

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

ModelKind = Literal["causal", "encoder"]


def check_model(name: str, device: str | None = None, trust_remote_code: bool = False) -> ModelSpec:
    """Refuse now, in one line, what :func:`load_model` would refuse later, without loading anything.

    Checks the name (:func:`resolve_model`), the device (:func:`resolve_device`) and, for a hub id,
    that it is in the local cache or the hub answers; runs call it before loading their data.

    Returns:
        The resolved spec.
    """
    resolve_device(device)
    spec = resolve_model(name, trust_remote_code=trust_remote_code)
    offline_snapshot(spec, name)
    return spec


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
    spec = resolve_model(name)
    if spec.gguf_file:
        return "causal"
    snapshot = offline_snapshot(spec, name)  # before importing transformers: an offline refusal is instant
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(
            snapshot or spec.source, revision=None if snapshot else spec.revision,
            trust_remote_code=spec.trust_remote_code,
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
    if num_layers < total:
        _cut_blocks(model, num_layers)


def _cut_blocks(model: Any, num_layers: int) -> tuple[Any, list[Any], list[Any] | None]:
    """Drop the blocks above the first ``num_layers`` and say so in the config.

    Returns the block list, the removed blocks and the config's old ``layer_types`` (None if it
    has none), which is what :func:`first_blocks` needs to put them back.
    """
    total = int(model.config.num_hidden_layers)
    blocks = _layer_list(model, total)
    removed = list(blocks[num_layers:])
    layer_types = getattr(model.config, "layer_types", None) or None
    del blocks[num_layers:]
    model.config.num_hidden_layers = num_layers
    if layer_types:
        model.config.layer_types = layer_types[:num_layers]
    return blocks, removed, layer_types


@contextmanager
def first_blocks(model: Any, num_layers: int) -> Iterator[None]:
    """Run ``model`` with only its first ``num_layers`` transformer blocks, then put the rest back.

    Features from a middle layer need no forward pass through the blocks above it. Not for a
    model that another thread is using at the same time.
    """
    import torch

    total = int(model.config.num_hidden_layers)
    if num_layers >= total:
        yield
        return
    if not getattr(model, "_overseer_full_pass_done", False):
        # transformers installs its hidden-state hooks on the blocks present at the first forward
        # pass; one token through the whole model first, so the blocks put back are hooked too.
        with torch.inference_mode():
            model(input_ids=torch.zeros((1, 1), dtype=torch.long, device=model.device), output_hidden_states=True)
        model._overseer_full_pass_done = True
    blocks, removed, layer_types = _cut_blocks(model, num_layers)
    try:
        yield
    finally:
        blocks.extend(removed)
        model.config.num_hidden_layers = total
        if layer_types:
            model.config.layer_types = layer_types


def _gguf_cache_dir(spec: ModelSpec) -> Path:
    return cache_root() / "models" / f"{Path(spec.gguf_file or 'model').stem}-{spec.fingerprint()}"


def _drop_quantization_markers(model: Any) -> None:
    """Make a model de-quantised from GGUF a plain model, as the copy loaded from the cache is.

    The tensors are already in ``dtype``, but transformers leaves the GGUF quantiser's markers on
    the model (``hf_quantizer``, ``is_quantized``, ``quantization_config``, ``config._is_quantized``):
    ``save_pretrained`` refuses such a model and the Trainer takes it for a quantised base without
    adapters. The quantiser's own ``remove_quantization_config`` clears the model's; the per-module
    config flag is cleared here.
    """
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for module in model.modules():
        config = getattr(module, "config", None)
        if getattr(config, "_is_quantized", False):
            config._is_quantized = False


def _load_gguf(spec: ModelSpec, dtype: Any) -> tuple[Any, Any]:
    """De-quantise a GGUF file once and keep the result as safetensors, so later loads take seconds."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from overseer._progress import quiet_module_bars

    base = ModelSpec(spec.name, spec.source, spec.gguf_file)  # cache the untruncated model
    cached = _gguf_cache_dir(base)
    if (cached / "config.json").is_file():
        tok = AutoTokenizer.from_pretrained(cached)
        return AutoModelForCausalLM.from_pretrained(cached, dtype=dtype), tok
    tok = AutoTokenizer.from_pretrained(spec.source, gguf_file=spec.gguf_file)
    with quiet_module_bars("transformers.modeling_gguf_pytorch_utils"):  # its bar would be junk in a log
        model = AutoModelForCausalLM.from_pretrained(spec.source, gguf_file=spec.gguf_file, dtype=dtype)
    _drop_quantization_markers(model)
    try:  # the staging name is the one `overseer cache` clears when a killed process left it
        with atomic_directory(cached, staging=cached.with_name(cached.name + f".tmp{os.getpid()}")) as tmp:
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
    except Exception as exc:  # noqa: BLE001 - a full disk raises OSError, SafetensorError, RuntimeError...
        # The cache only saves time next load: say why it was not written, and go on with the model.
        if (cached / "config.json").is_file():  # another process wrote the same cache first
            return model, tok
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"warning: could not cache the de-quantised model at {cached}: {cause} "
              "(the model is loaded; the next load de-quantises again)", file=sys.stderr, flush=True)
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
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; default: CUDA when available, else CPU. A
            device this machine does not have is refused in one line listing the ones it has.
        dtype: ``auto`` (bf16 on CUDA with bf16 support, else fp32), ``float32``, ``bfloat16``, ``float16``.
        trust_remote_code: allow the hub repo's own Python code; off unless asked for.

    A hub id is fetched only when the hub answers a quick check; offline (or with
    ``HF_HUB_OFFLINE`` set) a model in the local Hugging Face cache loads from it and any other
    is refused at once, listing the names that work offline.
    """
    import torch

    device = resolve_device(device)
    spec = resolve_model(name, num_layers=num_layers, trust_remote_code=trust_remote_code)
    snapshot = offline_snapshot(spec, name)  # before importing transformers: an offline refusal is instant
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    if dtype == "auto":
        use_bf16 = device.startswith("cuda") and torch.cuda.is_bf16_supported()
        torch_dtype = torch.bfloat16 if use_bf16 else torch.float32
    else:
        allowed = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
        if dtype not in allowed:
            raise unknown("dtype", dtype, [*allowed, "auto"])
        torch_dtype = allowed[dtype]

    # Offline, a cached hub model loads from its snapshot directory: a local path makes no request at all.
    source = snapshot or spec.source
    kwargs: dict[str, Any] = {"revision": None if snapshot else spec.revision,
                              "trust_remote_code": spec.trust_remote_code}
    try:
        if spec.gguf_file:
            model, tokenizer = _load_gguf(spec, torch_dtype)
            kind: ModelKind = "causal"
        else:
            config = AutoConfig.from_pretrained(source, **kwargs)
            kind = _model_kind(config)
            auto = AutoModelForCausalLM if kind == "causal" else AutoModel
            model = auto.from_pretrained(source, dtype=torch_dtype, **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
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
    if spec.adapter:
        from peft import PeftModel

        with warnings.catch_warnings():  # peft asks transformers 5 a question under its deprecated name
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            model = PeftModel.from_pretrained(model, spec.adapter).merge_and_unload()
        if (Path(spec.adapter) / "tokenizer_config.json").is_file():
            tokenizer = AutoTokenizer.from_pretrained(spec.adapter)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model.eval()
    model.to(device)
    return LoadedModel(spec=spec, model=model, tokenizer=tokenizer, kind=kind)
