"""Content-hashed on-disk cache of pooled activations, so each is computed once and reused.

A cache entry is keyed by the model's weights fingerprint, the exact texts (in order), the
layer, pooling and maximum length. The model itself is loaded only when some entry is missing,
so a run whose activations are all cached never pays for loading the model.

Each entry is one file ``<root>/<2 hex>/<key digest>.<checksum>.npy`` whose name carries the first
16 hex digits of the sha256 of its bytes: the checksum is published by the same rename as the
data. Every read checks it (and that the array has one row per text); a damaged entry is removed
with one warning and computed again. Entries written before checksums existed
(``<key digest>.npy``) are used when they load cleanly and have the right number of rows, and
recomputed otherwise. The cache only saves time: a full, read-only or otherwise unwritable cache
directory is one warning, and the run goes on without it; nothing half-written is ever left.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from overseer._storage import cause, warn
from overseer.models._backend import Backend, get_backend, split_spec
from overseer.models._catalog import cache_root
from overseer.models._features import extract_features
from overseer.models._load import LoadedModel

ACTIVATION_CACHE_ENV = "OVERSEER_ACTIVATION_CACHE_DIR"
CHECKSUM_DIGITS = 16


def activation_cache_dir() -> Path:
    """Where activations are cached: ``$OVERSEER_ACTIVATION_CACHE_DIR``, else ``<cache_root()>/activations``."""
    env = os.environ.get(ACTIVATION_CACHE_ENV)
    return Path(env) if env else cache_root() / "activations"


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
        self.root = Path(root) if root is not None else activation_cache_dir()
        self.device = device
        self.batch_size = batch_size
        self.trust_remote_code = trust_remote_code
        self._backends: dict[str, Backend] = {}
        self.stats = {"hits": 0, "misses": 0}
        self._warned_write = False

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

    def _key_path(self, key: dict[str, object]) -> Path:
        """``<root>/<2 hex>/<digest>``: the entry's file name without its checksum and suffix."""
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
        return self.root / digest[:2] / digest

    def _lookup(self, key_path: Path, rows: int) -> np.ndarray | None:
        """The cached array of ``key_path`` when a whole entry is there; damaged entries are removed, with a warning."""
        candidates = sorted(key_path.parent.glob(f"{key_path.name}.*npy"), key=lambda p: p.name.count(".") != 2)
        for path in candidates:  # checksummed entries first, then one from an older version
            array, problem = read_entry(path)
            if array is not None and (array.ndim == 0 or array.shape[0] != rows):
                array, problem = None, f"it holds {array.shape[0] if array.ndim else 0} rows for {rows} texts"
            if array is not None:
                return array
            warn(f"activation cache entry {path} is damaged ({problem}); recomputing it")
            try:
                path.unlink()
            except OSError:
                pass
        return None

    def _store(self, key_path: Path, array: np.ndarray) -> None:
        """Write an entry under a temporary name, then rename it to its checksummed name; on failure, warn once."""
        tmp = key_path.with_name(f".{key_path.name}.{os.getpid()}.tmp")
        try:
            key_path.parent.mkdir(parents=True, exist_ok=True)
            checksum = _write_file(tmp, array)
            os.replace(tmp, key_path.with_name(f"{key_path.name}.{checksum}.npy"))
        except BaseException as exc:  # a full disk, or Ctrl-C while writing: no partial file is left
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            if not isinstance(exc, OSError):
                raise
            if not self._warned_write:  # one line per cache, however many entries fail
                self._warned_write = True
                warn(f"could not write to the activation cache {self.root} ({cause(exc)}); going on without "
                     "caching, so these activations are computed again next time")

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
            layer: self._key_path(
                {"model": fingerprint, "texts": texts_key, "layer": layer, "pooling": pooling, "max_length": max_length}
            )
            for layer in layers
        }
        found = {}
        for layer, path in paths.items():
            array = self._lookup(path, len(texts))
            if array is not None:
                found[layer] = array
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
            self._store(paths[layer], array)
        return {**found, **computed}


class _HashingWriter:
    """A file-like object that writes through to ``fh`` and hashes what it writes."""

    def __init__(self, fh: Any):
        self.fh = fh
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        return self.fh.write(data)

    def flush(self) -> None:
        self.fh.flush()


def _write_file(path: Path, array: np.ndarray) -> str:
    """Write ``array`` in ``.npy`` format to ``path``; returns the checksum its entry name carries."""
    with open(path, "wb") as fh:
        writer = _HashingWriter(fh)
        np.save(writer, array, allow_pickle=False)  # streamed in chunks: no second copy of a large array
    return writer.sha256.hexdigest()[:CHECKSUM_DIGITS]


def entry_checksum(path: Path) -> str | None:
    """The checksum an entry's name carries (``<digest>.<checksum>.npy``); None for an older entry."""
    parts = path.name.split(".")
    return parts[1] if len(parts) == 3 and len(parts[1]) == CHECKSUM_DIGITS else None


def read_entry(path: Path) -> tuple[np.ndarray | None, str | None]:
    """The array of the cache entry ``path`` and None, or None and what is wrong with it."""
    expected = entry_checksum(path)
    try:
        if expected is not None:
            sha = hashlib.sha256()
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    sha.update(chunk)
            if sha.hexdigest()[:CHECKSUM_DIGITS] != expected:
                return None, "its content does not match the checksum in its name"
        array = np.load(path, allow_pickle=False)
    except OSError as exc:
        return None, f"cannot read it: {cause(exc)}"
    except Exception as exc:  # noqa: BLE001 - numpy raises ValueError, EOFError, ... for a damaged file
        return None, f"it cannot be loaded: {type(exc).__name__}: {' '.join(str(exc).split())[:80]}"
    if not isinstance(array, np.ndarray):
        return None, "it is not an array"
    return array, None
