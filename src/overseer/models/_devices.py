"""Which devices a model can be put on here, and a one-line refusal for one this machine lacks."""

from __future__ import annotations

import re

from overseer.errors import OverseerError

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


def resolve_device(device: str | None) -> str:
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


def bf16_supported() -> bool:
    """Whether bf16 autocast is worth turning on: a CUDA device that supports it (never on CPU)."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def free_accelerator_memory() -> None:
    """Collect garbage and return cached CUDA blocks, so the next model in this process fits."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
