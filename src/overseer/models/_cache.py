"""Content-hashed on-disk cache of pooled activations, so each is computed once and reused.

A cache entry is keyed by the model's weights fingerprint, the exact texts (in order), the
layer, pooling and maximum length. The model itself is loaded only when some entry is missing,
so a run whose activations are all cached never pays for loading the model.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from overseer.models._backend import Backend, get_backend, split_spec
from overseer.models._features import extract_features
from overseer.models._load import LoadedModel, cache_root


def _texts_hash(texts: Sequence[str], pairs: Sequence[str] | None) -> str:
    h = hashlib.sha256()
    for i, text in enumerate(texts):
        h.update(text.encode())
        h.update(b"\x00" + (pairs[i].encode() if pairs is not None else b"") + b"\x01")
    return h.hexdigest()


class ActivationCache:
    """Pooled features of (model, texts, layer, pooling), stored as ``.npy`` files under ``root``.

    Models are loaded on first miss and kept for the rest of the cache's life, so several splits
    share one load. ``stats`` counts hits and misses, which runs record.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        device: str | None = None,
        batch_size: int = 32,
        trust_remote_code: bool = False,
    ):
        default = os.environ.get("OVERSEER_ACTIVATION_CACHE_DIR") or cache_root() / "activations"
        self.root = Path(root) if root is not None else Path(default)
        self.device = device
        self.batch_size = batch_size
        self.trust_remote_code = trust_remote_code
        self._backends: dict[str, Backend] = {}
        self.stats = {"hits": 0, "misses": 0}

    def backend(self, name: str) -> Backend:
        """The backend for model spec ``name``; it must be a local model (features need its weights)."""
        if name not in self._backends:
            local = split_spec(name)[0] == "hf"
            options = {"device": self.device, "trust_remote_code": self.trust_remote_code} if local else {}
            backend = get_backend(name, **options)
            backend.require("loaded_model")
            self._backends[name] = backend
        return self._backends[name]

    @property
    def loaded_models(self) -> list[str]:
        """Names of the models whose weights this cache had to load (none when every entry was a hit)."""
        return [name for name, b in self._backends.items() if getattr(b, "is_loaded", False)]

    def model(self, name: str) -> LoadedModel:
        """The loaded model for ``name`` (loaded once, on demand)."""
        return self.backend(name).loaded

    def _path(self, key: dict[str, object]) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
        return self.root / digest[:2] / f"{digest}.npy"

    def features(
        self,
        model_name: str,
        texts: Sequence[str],
        layers: Sequence[int],
        pooling: str,
        text_pairs: Sequence[str] | None = None,
        max_length: int = 512,
        progress: Callable[[int], None] | None = None,
    ) -> dict[int, np.ndarray]:
        """Features of ``texts`` at each layer, from the cache where present, computed otherwise."""
        fingerprint = self.backend(model_name).identity()["fingerprint"]  # no weights are loaded for this
        texts_key = _texts_hash(texts, text_pairs)
        paths = {
            layer: self._path(
                {"model": fingerprint, "texts": texts_key, "layer": layer, "pooling": pooling, "max_length": max_length}
            )
            for layer in layers
        }
        found = {layer: np.load(p) for layer, p in paths.items() if p.is_file()}
        missing = [layer for layer in layers if layer not in found]
        self.stats["hits"] += len(found)
        if not missing:
            if progress is not None:
                progress(len(texts))
            return found
        self.stats["misses"] += len(missing)
        computed = extract_features(
            self.model(model_name),
            texts,
            layers=missing,
            pooling=pooling,
            batch_size=self.batch_size,
            max_length=max_length,
            text_pairs=text_pairs,
            progress=progress,
        )
        for layer, array in computed.items():
            _save_atomic(paths[layer], array)
        return {**found, **computed}


def _save_atomic(path: Path, array: np.ndarray) -> None:
    """Write ``array`` so that readers see the whole file or none (best effort on a full disk)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, array)
        os.replace(tmp, path)
    except OSError:
        # A cache that cannot be written only costs speed next time; never fail the run for it.
        try:
            tmp.unlink(missing_ok=True)
        except (OSError, UnboundLocalError):
            pass
