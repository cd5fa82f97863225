"""Registers Overseer's inspect_ai extensions: the ``overseer`` model provider and two tasks.

The tasks are ``overseer/audit`` (:mod:`overseer.audit.task`) and ``overseer/reward_tampering``
(:mod:`overseer.organisms.tampering_task`).

inspect_ai imports this module through the ``inspect_ai`` entry point in ``pyproject.toml`` when it
meets a name it does not know (``--model overseer/smollm2-135m``, ``inspect eval overseer/audit``), so
users never import Overseer themselves. Without inspect_ai installed the module registers nothing, and
importing it is harmless. The provider class itself lives in :mod:`overseer.models._inspect` and is
imported only when a model is first created.
"""

from __future__ import annotations

try:
    from inspect_ai.model import ModelAPI, modelapi
except ImportError:  # inspect-ai is an optional extra: pip install "overseer[inspect]"
    pass
else:

    @modelapi(name="overseer")
    def overseer_provider() -> type[ModelAPI]:
        """The ``overseer/SPEC`` provider: any model :func:`overseer.models.get_backend` can load."""
        from overseer.models import OverseerModelAPI

        return OverseerModelAPI

    from overseer.audit.task import audit  # noqa: E402,F401 - registers the overseer/audit task
    from overseer.organisms.tampering_task import reward_tampering  # noqa: E402,F401 - overseer/reward_tampering
