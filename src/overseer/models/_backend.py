"""One way to name any model, for every pillar: ``get_backend(spec)``.

A spec is a string:

=====================================  ==================================================
``smollm2-135m``, ``smollm2-135m-l8``  packaged short name or ladder rung (offline)
``hf/gpt2@main`` or ``gpt2``           Hugging Face hub id, optional ``@revision``
``./my-model``, ``~/m/x.Q4_K_M.gguf``  local ``save_pretrained`` directory or GGUF file
``openai/MODEL@http://HOST:PORT/v1``   an OpenAI-compatible server (vLLM, ollama, ...)
``mock``, ``mock/NAME``                scripted outputs, for tests
``guard:RUN`` or ``guard:RUN::SPEC``   a model behind a guard policy (``overseer.guard``)
=====================================  ==================================================

Each prefix is a backend registered under the ``backend`` kind of the shared registry; a string
without a known prefix is a local model (packaged, rung, directory, GGUF or hub id). The
backend's identity, used in run hashes and logs, comes from :func:`backend_identity` without
loading weights or contacting a server. API keys never appear in a spec: the OpenAI backend
reads one only from the environment variable the user names (``api_key_env``).

Every backend implements :meth:`Backend.generate`; the other capabilities (option scoring,
token counting, the loaded model for features) are optional, and asking a backend for one it
lacks raises :class:`CapabilityError` naming the backend and the capability. A backend that asks a
server sends each request through :meth:`Backend.request`, so that the
:class:`~overseer.models._guarded.Guarded` wrapper can cache, rate-limit and retry it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from overseer._registry import lookup, names, register
from overseer.errors import OverseerError

if TYPE_CHECKING:
    from overseer.models._generate import GenerateConfig, Generation
    from overseer.models._lm import Chat, OptionScores
    from overseer.models._load import LoadedModel
    from overseer.models._next_token import ScoringSupport, TopTokens

Prompt = "Chat | str"
"""A conversation (rendered through the model's chat format) or a string used verbatim."""

CAPABILITIES = ("generate", "score_options", "count_tokens", "loaded_model", "next_token")
_CAPABILITY_WORDS = {
    "generate": "generate text",
    "score_options": "score answer options (prompt log-probabilities)",
    "count_tokens": "count tokens",
    "loaded_model": "provide a loaded local model (features, fine-tuning)",
    "next_token": "give the next token's top log-probabilities",
}


class CapabilityError(OverseerError):
    """A backend was asked for something it cannot do (e.g. prompt log-probs from a chat-only server)."""


class GaveUp(OverseerError):
    """A remote request got no answer: the server is unreachable, or every retry failed (not a refusal)."""


class Backend:
    """A model behind one small interface, wherever it runs.

    Subclasses implement :meth:`generate` and :meth:`identity`, list what else they support in
    ``capabilities``, and override the matching methods. Construction must be cheap: weights load
    and connections open on first use, so building a backend only to record its identity is free.
    """

    kind: ClassVar[str] = "base"
    capabilities: ClassVar[frozenset[str]] = frozenset({"generate"})
    serves_url: ClassVar[bool] = False
    """True for backends whose spec names a server (``kind/MODEL@URL``)."""
    spec_fields: ClassVar[tuple[str, ...]] = ()
    """Constructor arguments that come from the spec string, not from options."""
    name: str = ""
    requester: Backend | None = None
    """The wrapper that sends this backend's remote requests (see :meth:`request`); None: sent as they come."""

    @classmethod
    def from_spec(cls, rest: str, **options: Any) -> Backend:
        """Build from the part of the spec after the prefix (see :func:`split_spec`)."""
        raise NotImplementedError

    @classmethod
    def options(cls) -> list[str]:
        """Option names :func:`get_backend` accepts for this backend (its constructor's, minus the spec's)."""
        import inspect

        params = inspect.signature(cls.__init__).parameters
        return [p for p in params if p != "self" and p not in cls.spec_fields]

    # -- identity -----------------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        """JSON-ready identity of the backend (kind, model, weights fingerprint or URL), secrets excluded."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What a run records about the backend (the identity, plus how prompts are rendered)."""
        return self.identity()

    # -- capabilities --------------------------------------------------------------------------

    def supports(self, capability: str) -> bool:
        """True when the backend can do ``capability`` (see :data:`CAPABILITIES`)."""
        return capability in self.capabilities

    def require(self, capability: str) -> None:
        """Raise :class:`CapabilityError` unless the backend can do ``capability``."""
        if capability not in self.capabilities:
            able = sorted(k for k in names("backend") if capability in lookup("backend", k).capabilities)
            raise CapabilityError(
                f"backend {self.name!r} ({self.kind}) cannot {_CAPABILITY_WORDS.get(capability, capability)}; "
                f"backends that can: {', '.join(able) or '(none)'}"
            )

    def render(self, prompt: Chat | str) -> str:
        """The exact text the model is given for ``prompt`` (a string is used verbatim)."""
        if isinstance(prompt, str):
            return prompt
        from overseer.models._lm import human_assistant

        return human_assistant(prompt.messages, prompt.assistant_prefix)

    def generate(self, prompts: Sequence[Chat | str], config: GenerateConfig | None = None) -> list[list[Generation]]:
        """``config.n`` completions of each prompt; a failed item carries its error, never vanishes."""
        raise NotImplementedError

    def score_options(self, prompts: Sequence[Chat | str], options: Sequence[Sequence[str]]) -> list[OptionScores]:
        """Summed log-probability and token count of each option after each prompt."""
        self.require("score_options")
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the model's own tokenizer."""
        self.require("count_tokens")
        raise NotImplementedError

    def next_token_logprobs(self, prompts: Sequence[Chat | str], top_k: int = 20) -> list[TopTokens]:
        """The ``top_k`` most likely tokens right after each prompt, with their log-probabilities."""
        self.require("next_token")
        raise NotImplementedError

    def tokens_after(self, prompt: Chat | str, option: str) -> int | None:
        """Tokens ``option`` takes right after ``prompt`` by the model's tokenizer; None when none is known."""
        return None

    def scoring_modes(self) -> ScoringSupport:
        """Which option-scoring modes (:data:`~overseer.models.SCORING_MODES`) this backend supports.

        Read from :attr:`capabilities` here; a server backend asks the server (see ``EndpointClient``).
        """
        from overseer.models._next_token import ScoringSupport

        able = {"full": "score_options", "first_token": "next_token", "sampled": "generate"}
        return ScoringSupport(tuple(m for m, cap in able.items() if self.supports(cap)), where=self.where())

    @property
    def loaded(self) -> LoadedModel:
        """The loaded model and tokenizer (local backends only), for features and fine-tuning."""
        self.require("loaded_model")
        raise NotImplementedError

    @property
    def context_length(self) -> int | None:
        """The model's context window in tokens, when known without a network call."""
        return None

    # -- remote requests ------------------------------------------------------------------------

    def where(self) -> str:
        """How messages about this backend's requests name it (``endpoint http://...``)."""
        return f"backend {self.name!r}"

    def request(self, key: str, send: Callable[[], dict[str, Any]],
                validate: Callable[[dict[str, Any]], object] | None = None) -> dict[str, Any]:
        """One remote request: ``send()`` tries it once and returns the answer; ``validate`` checks it.

        ``key`` names the request's content (the cache key). Through :attr:`requester` (a
        :class:`~overseer.models._guarded.Guarded` wrapper) the request is cached, rate-limited and
        retried; without one it is tried once, and a failure another try might cure ends it.
        """
        if self.requester is not None:
            return self.requester.request(key, send, validate)
        from overseer.models._guarded import RetryableError

        try:
            body = send()
        except RetryableError as exc:
            raise GaveUp(f"{self.where()} failed: {exc.reason}") from None
        if validate is not None:
            validate(body)
        return body


# --------------------------------------------------------------------------- naming


def backend(name: str) -> Callable[[type[Backend]], type[Backend]]:
    """Register a :class:`Backend` subclass as the spec prefix ``name`` (``name/...``)."""
    return register("backend", name)


PLUGIN_BACKENDS = {"guard": "overseer.guard.backend"}
"""Backends defined above this layer (a pillar's model wrapper), imported by name when a spec first uses
their prefix and a colon (``guard:REST``; ``guard/NAME`` stays a hub id), so the layer never imports a pillar
itself. The one place the layer names a module above it: keep this table short."""


def _import_backends() -> None:
    """Import the modules that register the built-in backends (cheap: no torch, no openai)."""
    from overseer.models import _endpoint, _lm, _mock  # noqa: F401


def _plugin_prefix(spec: str) -> str | None:
    """The plug-in backend named by ``spec``'s start (``guard:``), imported; None if none."""
    import importlib

    for prefix, module in PLUGIN_BACKENDS.items():
        if spec.startswith(f"{prefix}:"):
            importlib.import_module(module)
            return prefix
    return None


def split_spec(spec: str) -> tuple[str, str]:
    """``(backend kind, rest)`` for a spec string, without loading anything.

    ``openai/`` needs a server URL after ``@`` (``openai/gpt-oss-20b`` alone is a hub id); an
    unknown prefix before ``@http...`` is refused, since it plainly names a server.

    >>> split_spec("openai/llama@http://127.0.0.1:8000/v1")
    ('openai', 'llama@http://127.0.0.1:8000/v1')
    >>> split_spec("hf/gpt2@main"), split_spec("EleutherAI/pythia-14m"), split_spec("mock")
    (('hf', 'hf/gpt2@main'), ('hf', 'EleutherAI/pythia-14m'), ('mock', ''))
    """
    if not isinstance(spec, str) or not spec.strip():
        raise OverseerError(f"model spec must be a non-empty string; got {spec!r}")
    _import_backends()
    spec = spec.strip()
    prefix, sep, rest = spec.partition("/")
    plugin = _plugin_prefix(spec)
    if plugin is not None:
        return plugin, spec[len(plugin) + 1:]
    if spec == "mock":
        return "mock", ""
    if sep and prefix == "mock":
        return "mock", rest
    if sep and prefix == "hf":
        return "hf", spec  # the model layer reads the hf/ prefix itself (never a short name or path)
    names_with_url = ("@http://", "@https://")
    if sep and any(u in rest for u in names_with_url):
        if prefix not in names("backend") or prefix in ("hf", "mock"):
            served = [k for k in names("backend") if lookup("backend", k).serves_url]
            raise OverseerError(
                f"unknown backend prefix {prefix!r} in {spec!r}; allowed for a server URL: "
                + ", ".join(f"{k}/MODEL@URL" for k in served)
            )
        return prefix, rest
    return "hf", spec


def get_backend(spec: str | Backend, **options: Any) -> Backend:
    """The backend named by ``spec`` (see the module docstring), configured by ``options``.

    Options are the backend class's constructor arguments (``device``, ``dtype``, ``batch_size``
    for local models; ``api_key_env``, ``timeout_s``, ``max_retries`` for servers; ``outputs``
    for the mock). An option the backend does not take is refused with the allowed list.
    Nothing is loaded until the backend is used.
    """
    if isinstance(spec, Backend):
        return spec
    kind, rest = split_spec(spec)
    cls = lookup("backend", kind)
    return cls.from_spec(rest, **_check_options(cls, kind, options))


def backend_identity(spec: str, **options: Any) -> dict[str, Any]:
    """The identity :func:`get_backend` would give ``spec``, computed without loading or connecting."""
    return get_backend(spec, **options).identity()


def _check_options(cls: Any, kind: str, options: Mapping[str, Any]) -> dict[str, Any]:
    allowed = set(cls.options())
    bad = sorted(set(options) - allowed)
    if bad:
        raise OverseerError(f"backend {kind!r} has no option {bad[0]!r}; allowed: {', '.join(sorted(allowed))}")
    return dict(options)
