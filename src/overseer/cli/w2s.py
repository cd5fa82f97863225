"""``overseer w2s run``: flags (or a YAML config) → :class:`W2SConfig` → :func:`overseer.w2s.run`.

Every :class:`W2SConfig` field is a flag made from the field itself (``n_train`` → ``--n-train``,
``head.lr`` → ``--head-lr``, see :mod:`overseer._config`); the flags below are shortcuts that fill
``dataset_args`` and ``method_args``.
"""

from __future__ import annotations

import argparse
from typing import Any

from overseer.cli._config_command import ConfigCommand, command_group

W2S_RUN = ConfigCommand(
    "overseer.w2s", "W2SConfig",
    help="run one weak-to-strong experiment (defaults: the offline experiment)",
    description="Python equivalent: overseer.w2s.run(W2SConfig(...), out=..., force=...)",
)

# Shortcut flag (argparse dest) → key of dataset_args / method_args.
_DATA_FLAGS = {"data_path": "path", "text_field": "text_field", "pair_field": "pair_field",
               "label_field": "label_field", "chosen_field": "chosen_field", "rejected_field": "rejected_field",
               "id_field": "id_field", "data_limit": "limit"}
_METHOD_FLAGS = {"aux_coef": "aux_coef", "warmup_frac": "warmup_frac", "warmup_schedule": "schedule"}


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``overseer w2s run|sweep|report``."""
    w2s_sub = command_group(sub, "w2s", "weak-to-strong generalization (Burns et al. 2023)")
    W2S_RUN.add_parser(w2s_sub, run_command, add_flags=_add_run_flags)
    p = w2s_sub.add_parser(
        "sweep", help="every weak < strong pair of a model ladder, over datasets, methods and seeds, with job reuse",
        description="Python equivalent: overseer.w2s.sweep.sweep(SweepConfig.from_yaml(...), out=..., ray=...). "
        "Rerunning a killed sweep resumes it: finished jobs are loaded, never recomputed.",
    )
    p.add_argument("--config", required=True, help="sweep YAML (ladder, datasets, methods, seeds, shared options)")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run each job as a Ray task: alone, on a local Ray instance; with ADDRESS, on that cluster")
    p.add_argument("--out", help="runs directory (default: ./runs)")
    p.set_defaults(func=sweep_command)
    p = w2s_sub.add_parser(
        "report", help="plots (PNG) and a Markdown table of w2s runs, sweeps or runs directories",
        description="Python equivalent: overseer.w2s.report.write_report([...], out=...)",
    )
    p.add_argument("runs", nargs="+", metavar="RUNS", help="run directories, sweep directories or runs directories")
    p.add_argument("--out", help="report directory (default: <first argument>/report, or ./w2s-report for a run)")
    p.set_defaults(func=report_command)


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    """The flags of ``overseer w2s run``: one per W2SConfig field, then the shortcuts."""
    from overseer._config import add_flags
    from overseer.w2s import W2SConfig

    p.add_argument("--config", help="YAML file of W2SConfig options; flags override it")
    p.add_argument("--out", help="runs directory (default: ./runs)")
    p.add_argument("--force", action="store_true", help="recompute even if this exact run is finished")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="show no progress (default: a bar on a terminal, else a line every "
                   "$OVERSEER_PROGRESS_INTERVAL seconds, 30 by default)")
    add_flags(p, W2SConfig)
    short = p.add_argument_group("shortcuts", "flags that fill method_args and dataset_args")
    short.add_argument("--hard-labels", action="store_true", default=None, help="xent on hardened weak labels")
    short.add_argument("--aux-coef", help="logconf: final weight of the student's own predictions")
    short.add_argument("--warmup-frac", help="logconf: share of training over which the weight warms up")
    short.add_argument("--warmup-schedule", choices=["linear", "reference"],
                       help="logconf: paper's linear warm-up, or the public reference code's schedule")
    short.add_argument("--data-path", help="local copy of the dataset (a file or the source repo's clone)")
    short.add_argument("--text-field", help="local files: field holding the text")
    short.add_argument("--pair-field", help="local files: field holding the second text")
    short.add_argument("--label-field", help="local files: field holding the 0/1 label")
    short.add_argument("--chosen-field", help="local files: preferred text of a comparison")
    short.add_argument("--rejected-field", help="local files: dispreferred text of a comparison")
    short.add_argument("--id-field", help="local files: field holding a unique id")
    short.add_argument("--data-limit", type=int, help="read at most this many records")


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`W2SConfig` that the ``--config`` file, then the shortcuts, then the field flags describe."""
    shortcuts: dict[str, Any] = {
        "dataset_args": {key: getattr(args, f) for f, key in _DATA_FLAGS.items() if getattr(args, f) is not None},
        "method_args": {key: getattr(args, f) for f, key in _METHOD_FLAGS.items() if getattr(args, f) is not None},
    }
    if args.hard_labels:
        shortcuts["method_args"]["hard"] = True
    return W2S_RUN.from_args(args, shortcuts)


def run_command(args: argparse.Namespace) -> int:
    """Check the config's names and paths, then run the experiment and print its headline numbers and path."""
    from overseer.w2s.checks import check_run

    cfg = config_from_args(args)
    check_run(cfg, args.out)  # in a second, before torch, transformers and scikit-learn are imported
    from overseer.w2s import run

    result = run(cfg, out=args.out, force=args.force, progress=args.progress)
    W2S_RUN.print_headline(result)
    agreement = result.metrics["agreement"]
    print(f"weak-label accuracy {agreement['weak_label_accuracy']:.3f}; "
          f"student agrees with weak on {agreement['student_vs_weak_test']:.1%} of test")
    print(f"run: {result.path}")
    return 0


def sweep_command(args: argparse.Namespace) -> int:
    """Run or resume the sweep, then print what was computed, reused and failed."""
    from overseer._names import safe_name
    from overseer._yaml import read_yaml
    from overseer.results import check_runs_dir

    data = read_yaml(args.config, "sweep config")
    if isinstance(data, dict) and isinstance(data.get("name"), str):
        safe_name(data["name"], "sweep name")  # refused in a second, before the heavy imports below
    check_runs_dir(args.out)

    from overseer.w2s.sweep import SweepConfig, sweep

    cfg = SweepConfig.from_dict(data)
    result = sweep(cfg, out=args.out, ray=args.ray)
    print(f"sweep {cfg.name}: {len(result.computed)} jobs computed, {len(result.loaded)} reused, "
          f"{len(result.failures)} failed; {len(result.runs)} runs in {result.seconds:.1f}s")
    for failure in result.failures:
        print(f"FAILED {failure['job']}: {failure['error']}")
    print(f"sweep: {result.path}")
    print(f"report: overseer w2s report {result.path}")
    return 0 if result.ok else 1


def report_command(args: argparse.Namespace) -> int:
    """Write the report and list its files."""
    from overseer.w2s.report import write_report

    files = write_report(args.runs, out=args.out)
    for path in files:
        print(path)
    return 0
