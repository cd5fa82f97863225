"""Whether the Hugging Face hub can be used now, and where a hub model loads from when it cannot.

A hub id loads from the network only when the hub answers a quick check; offline (or with
``HF_HUB_OFFLINE`` set) it loads from the local Hugging Face cache or is refused at once, in one line.
"""

from __future__ import annotations

import os
import threading
import time

from overseer.errors import OverseerError
from overseer.models._catalog import ModelSpec, known_model_names

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


def offline_snapshot(spec: ModelSpec, name: str) -> str | None:
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
