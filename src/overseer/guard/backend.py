"""The ``guard`` model backend: any model behind a guard policy, usable wherever a model spec is.

Spec: ``guard:POLICY_DIR`` (the guarded model recorded in the policy) or ``guard:POLICY_DIR::INNER_SPEC``
(any other model spec behind the same classifiers). ``POLICY_DIR`` is a
guard run's ``policy`` folder or the run folder itself. The model layer imports this module when a spec
starts with the prefix (``PLUGIN_BACKENDS`` in ``overseer.models``), so audits, generation and the
inspect provider take guarded models without knowing about this pillar.

Each reply records which stage fired in :attr:`GuardBackend.events` (and, with ``log_path``, as one JSON
line per reply).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from overseer.errors import OverseerError
from overseer.guard.classifiers import DEFENCES, GuardPolicy
from overseer.models import Backend, Chat, GenerateConfig, Generation, backend, get_backend

SEPARATOR = "::"


def policy_dir(path: str | Path) -> Path:
    """The policy folder named by ``path`` (a run folder holds it as ``policy/``)."""
    path = Path(path).expanduser()
    if (path / "policy" / "policy.json").is_file():
        return path / "policy"
    return path


@backend("guard")
class GuardBackend(Backend):
    """A model whose replies pass through a guard policy (refused or halted per its defence).

    Args:
        policy: the policy folder (or a run folder holding ``policy/``).
        inner: the guarded model's spec; None: the one the policy was trained for.
        defence: which defence applies (default: the policy's, normally ``cascade``).
        device: where the inner model and the classifier models run.
        log_path: append one JSON line per reply (stage fired, whether blocked or halted).
    """

    kind = "guard"
    capabilities = frozenset({"generate", "count_tokens"})
    spec_fields = ("policy", "inner")

    def __init__(self, policy: str, inner: str | None = None, defence: str | None = None, device: str | None = None,
                 log_path: str | None = None):
        self.policy_path = policy_dir(policy)
        if not (self.policy_path / "policy.json").is_file():
            raise OverseerError(f"guard spec names {policy!r}, which holds no guard policy (policy.json); give a "
                                "guard run folder or its policy folder: guard:runs/guard-<hash>")
        if defence is not None and defence not in DEFENCES:
            raise OverseerError(f"unknown defence {defence!r}; allowed: {', '.join(DEFENCES)}")
        self._policy: GuardPolicy | None = None
        self.inner_spec = inner
        self.defence = defence
        self.device = device
        self.log_path = log_path
        self._inner: Backend | None = None
        self._lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self.name = f"guard:{self.policy_path}" + (f"{SEPARATOR}{inner}" if inner else "")

    @classmethod
    def from_spec(cls, rest: str, **options: Any) -> GuardBackend:
        """``POLICY_DIR`` or ``POLICY_DIR::INNER_SPEC``."""
        policy, sep, inner = rest.partition(SEPARATOR)
        if not policy.strip():
            raise OverseerError("guard spec needs a policy folder: guard:POLICY_DIR or guard:POLICY_DIR::MODEL")
        return cls(policy.strip(), inner.strip() or None if sep else None, **options)

    @property
    def policy(self) -> GuardPolicy:
        """The loaded policy (classifier models load on first use)."""
        if self._policy is None:
            self._policy = GuardPolicy.load(self.policy_path)
        return self._policy

    @property
    def inner(self) -> Backend:
        """The guarded model's backend; its loaded weights are shared with classifiers that read it."""
        if self._inner is None:
            spec = self.inner_spec or self.policy.guarded_model
            self._inner = get_backend(spec, device=self.device) if _local(spec) else get_backend(spec)
            loaded = {}
            if self._inner.supports("loaded_model") and spec == self.policy.guarded_model:
                loaded[spec] = self._inner.loaded
            self.policy.share_readers(loaded, self.device)
        return self._inner

    def identity(self) -> dict[str, Any]:
        """The policy's folder and thresholds digest, the inner model's identity and the defence."""
        import hashlib

        digest = hashlib.sha256((self.policy_path / "policy.json").read_bytes()).hexdigest()[:16]
        inner = get_backend(self.inner_spec or self.policy.guarded_model).identity()
        return {"backend": "guard", "policy": str(self.policy_path), "policy_digest": digest, "inner": inner,
                "defence": self.defence or self.policy.defence}

    def render(self, prompt: Chat | str) -> str:
        """As the inner model renders it."""
        return self.inner.render(prompt)

    def generate(self, prompts: Sequence[Chat | str], config: GenerateConfig | None = None) -> list[list[Generation]]:
        """Guarded replies: ``config.n`` copies of one reply per prompt (copies are not guarded one by one)."""
        from overseer.guard.guarding import guarded_generate

        config = config or GenerateConfig()
        with self._lock:
            replies = guarded_generate(self.policy, self.inner, prompts, GenerateConfig(
                max_new_tokens=config.max_new_tokens, temperature=config.temperature, top_p=config.top_p, n=1,
                seed=config.seed, stop=config.stop), self.defence)
        out = []
        for reply in replies:
            if reply.error is not None:
                out.append([Generation.failed(reply.error)] * config.n)
                continue
            o = reply.outcome
            event = {"stage": o.stage, "blocked": o.blocked, "halted_at": o.halted_at, "escalated": o.escalated}
            self.events.append(event)
            if self.log_path:
                with open(self.log_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(event) + "\n")
            finish = "stop" if o.refused else "length" if len(o.shown) >= len(reply.response) and reply.response \
                and self._hit_length(reply.response, config) else "stop"
            out.append([Generation(o.shown, (), (), finish)] * config.n)
        return out

    def _hit_length(self, response: str, config: GenerateConfig) -> bool:
        try:
            return self.inner.count_tokens(response) >= config.max_new_tokens
        except OverseerError:
            return False

    def count_tokens(self, text: str) -> int:
        """Tokens by the inner model's tokenizer."""
        return self.inner.count_tokens(text)

    @property
    def context_length(self) -> int | None:
        """The inner model's context window."""
        return self.inner.context_length


def _local(spec: str) -> bool:
    from overseer.models import split_spec

    return split_spec(spec)[0] == "hf"
