"""``overseer cache info|verify|clear``: list, check and clear the activation, endpoint and model caches.

Each sub-command is one library call (:func:`overseer.models.cache_info`,
:func:`~overseer.models.verify_caches`, :func:`~overseer.models.clear_caches`).
"""

from __future__ import annotations

import argparse

_WHICH = ("activations", "endpoint", "models")


def _environment_help() -> str:
    from overseer.models import CACHE_ENVIRONMENT

    lines = ["caches:",
             "  activations  pooled features, one checksummed .npy file per (model, texts, layer, pooling)",
             "  endpoint     responses of OpenAI-compatible servers: <root>/endpoint/responses.sqlite",
             "  models       GGUF models converted to safetensors: <root>/models",
             "",
             "environment variables the caches read:"]
    lines += [f"  {name:<30} {text}" for name, text in CACHE_ENVIRONMENT.items()]
    return "\n".join(lines)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``overseer cache``."""
    epilog = _environment_help()
    raw = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("cache", help="list, check and clear the activation, endpoint and model caches",
                       description="Python equivalent: overseer.models.cache_info(), verify_caches(), clear_caches()",
                       epilog=epilog, formatter_class=raw)
    cache_sub = p.add_subparsers(dest="cache_command", required=True, metavar="COMMAND")

    info = cache_sub.add_parser("info", help="where each cache is, its entries and size", epilog=epilog,
                                formatter_class=raw)
    info.set_defaults(func=info_command)

    verify = cache_sub.add_parser("verify", help="check every entry; --fix removes the damaged ones (exit 1 "
                                  "when damaged entries are left)", epilog=epilog, formatter_class=raw)
    _add_which(verify, "check only the")
    verify.add_argument("--fix", action="store_true", help="remove damaged entries (they are recomputed when needed)")
    verify.set_defaults(func=verify_command)

    clear = cache_sub.add_parser("clear", help="remove every entry of the chosen caches (asks nothing)",
                                 epilog=epilog, formatter_class=raw)
    _add_which(clear, "clear the")
    clear.add_argument("--all", action="store_true", help="clear every cache")
    clear.set_defaults(func=clear_command)


def _add_which(p: argparse.ArgumentParser, verb: str) -> None:
    for name in _WHICH:
        p.add_argument(f"--{name}", action="store_true", help=f"{verb} {name} cache")


def _chosen(args: argparse.Namespace) -> list[str]:
    return [name for name in _WHICH if getattr(args, name)]


def info_command(args: argparse.Namespace) -> int:
    """One line per cache: name, entries and size, path."""
    from overseer.models import cache_info

    for info in cache_info():
        note = f"  ({info.note})" if info.note else ""
        print(f"{info.name:<12} {info.describe():<26} {info.path}{note}")
    return 0


def verify_command(args: argparse.Namespace) -> int:
    """Report each damaged entry; exit 1 when any is left (none were found, or --fix removed them all: 0)."""
    from overseer.models import count_label, verify_caches

    report = verify_caches(_chosen(args) or None, fix=args.fix)
    removed = {id(entry) for entry in report.removed}
    for entry in report.bad:
        print(f"{'removed' if id(entry) in removed else 'bad'}: {entry.describe()}")
    counts = ", ".join(count_label(name, n) for name, n in report.checked.items())
    line = f"checked {counts}: {len(report.bad)} bad"
    if report.removed:
        line += f", {len(report.removed)} removed"
    if not report.ok:
        line += " (some could not be removed)" if args.fix else " (run `overseer cache verify --fix` to remove them)"
    print(line)
    return 0 if report.ok else 1


def clear_command(args: argparse.Namespace) -> int:
    """Remove the chosen caches and say what was removed."""
    from overseer.errors import OverseerError
    from overseer.models import clear_caches

    names = list(_WHICH) if args.all else _chosen(args)
    if not names:
        raise OverseerError("say which caches to clear: --activations, --endpoint, --models or --all")
    for info in clear_caches(names):
        print(f"removed {info.name}: {info.describe()} from {info.path}")
    return 0
