"""``overseer selfcorrect run``: flags → :class:`SelfCorrectConfig` → :func:`overseer.selfcorrect.run`."""

from __future__ import annotations

import argparse
from typing import Any

# flag (argparse dest) → config field; flags left unset keep the config's default
_FLAGS = {
    "model": "models", "suite": "suites", "conditions": "conditions", "data_dir": "data_dir",
    "bbq_source": "bbq_source", "bbq_categories": "bbq_categories", "bbq_per_cell": "bbq_per_cell",
    "law_students": "law_students", "limit": "limit", "seed": "seed", "bbq_answer": "bbq_answer",
    "normalize": "normalize", "cot_max_new_tokens": "cot_max_new_tokens", "chat_format": "chat_format",
    "n_bootstrap": "n_bootstrap", "endpoint": "endpoint", "endpoint_tokenizer": "endpoint_tokenizer",
    "endpoint_generation": "endpoint_generation", "endpoint_rps": "endpoint_rps",
    "endpoint_concurrency": "endpoint_concurrency", "device": "device", "dtype": "dtype",
    "batch_size": "batch_size", "out": "runs_dir",
}


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``overseer selfcorrect ...``."""
    top = sub.add_parser("selfcorrect", help="moral self-correction: BBQ, Winogender, law school (Ganguli et al. 2023)")
    top_sub = top.add_subparsers(dest="selfcorrect_command", required=True, metavar="COMMAND")
    p = top_sub.add_parser(
        "run",
        help="evaluate models under the paper's prompting conditions",
        description="Python equivalent: overseer.selfcorrect.run(SelfCorrectConfig(models=..., suites=..., "
        "conditions=...)). Defaults: smollm2-135m, all suites, conditions q,if, the default sample.",
    )
    p.add_argument("--model", help="comma-separated models: short name, hub id, local dir, .gguf "
                   "(with --endpoint: the server's model names); default smollm2-135m")
    p.add_argument("--suite", help="comma-separated suites: bbq, winogender, law (default: all)")
    p.add_argument("--conditions", help="comma-separated: q, if (Q+IF), cot (Q+IF+CoT), match "
                   "(Q+Match-Stats, winogender only); default q,if")
    p.add_argument("--limit", type=int, help="at most N items per suite (quick looks)")
    p.add_argument("--endpoint", help="OpenAI-compatible server URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--endpoint-tokenizer", help="local tokenizer whose chat template renders endpoint prompts "
                   "(default: the paper's Human/Assistant format)")
    p.add_argument("--endpoint-generation", choices=["chat", "completions"],
                   help="API used for chain-of-thought generation (default chat)")
    p.add_argument("--endpoint-rps", type=float, help="endpoint requests per second (default 20)")
    p.add_argument("--endpoint-concurrency", type=int, help="endpoint requests in flight (default 4)")
    p.add_argument("--data-dir", help="folder with bbq/, winogender/, law_school/ (default ../shared/data)")
    p.add_argument("--bbq-source", help="BBQ data/ folder or hf:<dataset id> (default DATA_DIR/bbq)")
    p.add_argument("--bbq-categories", help="comma-separated BBQ categories (default: all present)")
    p.add_argument("--bbq-per-cell", type=int, help="BBQ items per category x context x polarity (default 20)")
    p.add_argument("--law-students", type=int, help="law-school students sampled (default 200)")
    p.add_argument("--seed", type=int, help="sampling and bootstrap seed (default 0)")
    p.add_argument("--bbq-answer", choices=["text", "letter"], help="score option text (default) or letter")
    p.add_argument("--normalize", choices=["mean", "sum"], help="BBQ option scores: per-token mean (default) or sum")
    p.add_argument("--debias-order", action="store_true", default=None,
                   help="average BBQ scores over the 3 cyclic option orders (3x cost)")
    p.add_argument("--cot-max-new-tokens", type=int, help="chain-of-thought token cap (default 64)")
    p.add_argument("--chat-format", choices=["auto", "human_assistant"],
                   help="auto: the model's chat template (Human/Assistant without one)")
    p.add_argument("--n-bootstrap", type=int, help="bootstrap resamples (default 1000)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--batch-size", type=int, help="items per forward pass (default 8)")
    p.add_argument("--out", help="runs directory (default ./runs)")
    p.add_argument("--force", action="store_true", help="recompute even if this exact run is finished")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run_command)


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`SelfCorrectConfig` the flags describe."""
    from overseer.selfcorrect import SelfCorrectConfig

    values = {field: getattr(args, flag) for flag, field in _FLAGS.items() if getattr(args, flag, None) is not None}
    if args.debias_order:
        values["debias_order"] = True
    if args.no_progress:
        values["progress"] = False
    return SelfCorrectConfig(**values)


def _fmt(est: dict[str, Any] | None) -> str:
    if not est or est.get("value") is None:
        return "n/a"
    low, high = est.get("ci_low"), est.get("ci_high")
    ci = f" [{low:+.3f}, {high:+.3f}]" if low is not None and high is not None else ""
    return f"{est['value']:+.3f}{ci}"


def run_command(args: argparse.Namespace) -> int:
    """Run the experiments, print a table of headline numbers and the run path."""
    from overseer.selfcorrect import run
    from overseer.selfcorrect.prompts import LABELS

    cfg = config_from_args(args)
    result = run(cfg, force=args.force)
    if result.reused:
        print("finished run found with this exact config; reusing it (--force to recompute)")
    for model, per_suite in result.metrics.items():
        print(f"model {model}")
        for cond in cfg.conditions:
            cells = []
            if cond in per_suite.get("bbq", {}):
                overall = per_suite["bbq"][cond]["overall"]
                cells.append(f"BBQ s_AMB {_fmt(overall['s_amb'])}  s_DIS {_fmt(overall['s_dis'])}")
            if cond in per_suite.get("winogender", {}):
                cells.append(f"Winogender rho {_fmt(per_suite['winogender'][cond].get('rho'))}")
            if cond in per_suite.get("law", {}):
                cells.append(f"law gap {_fmt(per_suite['law'][cond].get('gap'))}")
            if cells:
                print(f"  {LABELS[cond]:<14} " + " | ".join(cells))
    print(f"wall time {result.wall_s:.0f} s")
    print(f"run: {result.path}")
    return 0
