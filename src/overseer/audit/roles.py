"""Which model plays a role: an Overseer model spec or any inspect model string, resolved one way everywhere.

* ``overseer/SPEC`` and plain Overseer specs (``smollm2-135m``, ``mock``, ``hf/gpt2``, a local folder, a hub id)
  run through Overseer's inspect provider: offline, the model's own tokenizer, no hub lookups.
* ``openai/NAME@URL`` (an OpenAI-compatible server, Overseer's spelling) runs through inspect's
  ``openai-api`` provider at that URL, so the served model can call tools (auditors, judges and targets
  with tools need this); the API key comes from ``$OVERSEER_API_KEY`` or is a placeholder for local servers.
* Strings whose first part is an inspect provider (``anthropic/...``, ``openai-api/...``, ``ollama/...``,
  ``mockllm/model``) go to inspect as they are.
"""

from __future__ import annotations

import os
from typing import Any

from overseer.errors import OverseerError

SCRIPTED = "scripted"
"""Auditor meaning: play each seed's scripted turns (no model)."""
AUTO = "auto"
"""Auditor meaning: scripted for seeds with turns; for seeds without, the target model itself as a model auditor."""
INSPECT_PROVIDERS = frozenset({
    "anthropic", "azureai", "bedrock", "cloudflare", "deepseek", "fireworks", "google", "grok", "groq",
    "hf-inference-providers", "litellm", "llama-cpp-python", "mistral", "mockllm", "moonshot", "none", "ollama",
    "openai", "openai-api", "openrouter", "perplexity", "sagemaker", "sambanova", "sglang", "together",
    "transformer_lens", "vllm",
})
"""First parts of inspect model strings (``hf`` is absent on purpose: ``hf/NAME`` loads through Overseer)."""
API_KEY_ENV = "OVERSEER_API_KEY"


def classify(model: str) -> tuple[str, str]:
    """``("overseer", SPEC)``, ``("served", "NAME@URL")`` or ``("inspect", STRING)`` for a role's model string."""
    from overseer.models import split_spec

    if not isinstance(model, str) or not model.strip():
        raise OverseerError(f"a model must be a non-empty string; got {model!r}")
    model = model.strip()
    if model.startswith("overseer/"):
        model = model[len("overseer/"):]
        kind, rest = split_spec(model)
        return ("served", rest) if kind == "openai" else ("overseer", model)
    if "@http://" in model or "@https://" in model:
        kind, rest = split_spec(model)
        if kind != "openai":
            raise OverseerError(f"{model!r}: only openai/NAME@URL names a server here")
        return "served", rest
    prefix = model.split("/", 1)[0]
    if "/" in model and prefix in INSPECT_PROVIDERS:
        return "inspect", model
    split_spec(model)  # refuses malformed specs
    return "overseer", model


def _api_key(url: str) -> str:
    """``$OVERSEER_API_KEY`` for this server, refused over plain http to another host; a placeholder when unset."""
    import ipaddress
    import urllib.parse

    key = os.environ.get(API_KEY_ENV)
    if not key:
        return "local"
    parsed = urllib.parse.urlparse(url)
    host = parsed.hostname or ""
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    if parsed.scheme != "https" and not local:
        raise OverseerError(f"{API_KEY_ENV} is set, and {url!r} is plain http to another host; use https or unset it")
    return key


def check_model(model: str, role: str) -> None:
    """Refuse an unknown local model name before anything runs (servers and hub ids are checked on use)."""
    kind, spec = classify(model)
    if kind == "served":
        _api_key(spec.partition("@")[2])
    if kind == "overseer":
        from overseer.models import get_backend, split_spec

        backend_kind, _ = split_spec(spec)
        if backend_kind == "hf":
            from overseer.models import resolve_model

            try:
                resolve_model(spec)
            except OverseerError as exc:
                raise OverseerError(f"{role} model {model!r}: {exc}") from None
        else:
            get_backend(spec)


def get_role_model(model: str, **model_args: Any) -> Any:
    """The inspect ``Model`` for ``model`` (see the module docstring)."""
    from inspect_ai.model import get_model

    kind, spec = classify(model)
    if kind == "overseer":
        return get_model(f"overseer/{spec}", **model_args)
    if kind == "served":
        name, _, url = spec.partition("@")
        return get_model(f"openai-api/overseer/{name}", base_url=url, api_key=_api_key(url), **model_args)
    return get_model(spec, **model_args)


def native_tools(model: str) -> bool:
    """Whether the model's provider takes tools (Overseer's local models take text only)."""
    return classify(model)[0] != "overseer"
