"""``overseer runs``: list finished runs of every pillar, or compare some side by side."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``overseer runs``."""
    p = sub.add_parser("runs", help="list runs (all pillars) or compare some: overseer runs NAME NAME")
    p.add_argument("names", nargs="*", help="run names to compare (default: list all)")
    p.add_argument("--out", help="runs directory (default: ./runs)")
    p.add_argument("--pillar", help="only runs of this pillar (w2s, selfcorrect, ...)")
    p.set_defaults(func=runs_command)


def runs_command(args: argparse.Namespace) -> int:
    """List runs, or show the chosen runs' summaries and differing config values side by side."""
    import pandas as pd

    from overseer.errors import OverseerError
    from overseer.results import DEFAULT_RUNS_DIR, list_runs, load_config

    frame = list_runs(args.out, pillar=args.pillar)
    runs_dir = args.out or DEFAULT_RUNS_DIR
    if frame.empty:
        print(f"no finished runs in {runs_dir}")
        return 0
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.float_format", lambda v: f"{v:.3f}")
    if not args.names:
        print(frame.drop(columns=[c for c in frame.columns if frame[c].isna().all()]).to_string(index=False))
        return 0
    missing = [n for n in args.names if n not in set(frame["name"])]
    if missing:
        raise OverseerError(f"unknown run {missing[0]!r}; allowed: {', '.join(frame['name'])}")
    chosen = frame.set_index("name").loc[args.names]
    print(chosen.dropna(axis=1, how="all").T.to_string())
    configs = {n: pd.json_normalize(load_config(runs_dir, n)).iloc[0] for n in args.names}
    table = pd.DataFrame(configs)
    differing = table[table.astype(str).nunique(axis=1) > 1]
    print("\nconfig values that differ:" if not differing.empty else "\nconfigs are identical")
    if not differing.empty:
        print(differing.to_string())
    return 0
