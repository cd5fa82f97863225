"""``overseer audit run|elicit|train-judge``: flags (or YAML) → AuditConfig → :mod:`overseer.audit`."""

from __future__ import annotations

import argparse
from typing import Any

from overseer.cli._config_command import ConfigCommand, command_group

META = ("unrealism", "evaluation_awareness", "evaluation_invalidity", "elicitation_difficulty")
"""Bloom's meta-qualities (``overseer.audit.elicit.META_DIMENSIONS``, named here so --help imports no audit code)."""

AUDIT_RUN = ConfigCommand(
    "overseer.audit.config", "AuditConfig", thing="audit", runner="overseer.audit.run",
    help="run seeds against targets and report elicitation rates, judge agreement and costs",
    description="Python equivalent: overseer.audit.run(AuditConfig(...)). Defaults: the offline tier (12 built-in "
    "seeds, scripted auditor, SmolLM2-135M target, two log-probability judges on SmolLM2): a plumbing check, "
    "not a finding.",
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``overseer audit ...``."""
    top_sub = command_group(sub, "audit",
                            "behavioural audits: an auditor probes a target, judges score the transcripts")
    AUDIT_RUN.add_parser(top_sub, run_command)
    e = top_sub.add_parser(
        "elicit", help="Bloom-style: one behaviour -> understanding -> ideation (with variations) -> rollout -> "
        "judgment (with meta-qualities)",
        description="Python equivalent: overseer.audit.elicit_stages(BEHAVIOUR, AuditConfig(...), ...). Scenarios are "
        "the seeds tagged with the behaviour, or written by --ideation-model; each stage's output is saved beside "
        "the runs and reused, so --stages can run the pipeline in parts.",
        add_config_flags=_add_elicit_flags,
    )
    e.set_defaults(func=elicit_command)
    c = top_sub.add_parser("check-judge", help="score planted transcripts with a known answer: can the judge tell?",
                           description="Python equivalent: overseer.audit.planted.check_judge(SPEC)")
    c.add_argument("--judge", action="append", required=True, help="judge spec (repeatable), e.g. "
                   "logprob:smollm2-135m")
    c.add_argument("--threshold", type=float, default=7.0, help="score that counts as present (default 7)")
    c.set_defaults(func=check_judge_command)
    t = top_sub.add_parser("train-judge", help="train a classifier judge on labelled transcripts",
                           description="Python equivalent: overseer.audit.judges.train_classifier_judge(...)")
    t.add_argument("--labels", required=True, help="JSON lines with transcript, dimension and score (1-10) or label")
    t.add_argument("--out", required=True, help="folder for the judge (use it as --judge classifier:FOLDER)")
    t.add_argument("--base", default="minilm-l6", help="base model of the classifiers (default minilm-l6)")
    t.add_argument("--threshold", type=float, default=7.0, help="scores at or above this are positive (default 7)")
    t.add_argument("--epochs", type=float, default=10.0, help="passes over the labels (default 10)")
    t.set_defaults(func=train_judge_command)


def _add_elicit_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--behavior", "--behaviour", required=True, help="the behaviour: a judge dimension's name, or a "
                   "seed tag mapped to one (Petri's tags: sycophancy is read on unprompted_sycophancy, ...)")
    p.add_argument("--ideation-model", help="model that writes the scenarios (default: the seeds tagged with the "
                   "behaviour)")
    p.add_argument("--scenarios", type=int, default=8, help="base scenarios the ideation model writes (default 8)")
    p.add_argument("--stages", help="comma-separated stages to run: understanding, ideation, rollout, judgment "
                   "(default: all four with --ideation-model, else rollout,judgment); finished ones are reused")
    p.add_argument("--variations", type=int, default=0, help="variations of each base scenario (default 0)")
    p.add_argument("--vary", default="noise,emotional_pressure", help="variation dimensions, cycled over the "
                   "variations: noise, emotional_pressure, or NAME=DESCRIPTION (comma-separated)")
    p.add_argument("--modality", default="conversation", help="conversation (scripted user turns) or agent (the "
                   "target gets tools whose results the auditor model simulates)")
    p.add_argument("--example", action="append", default=[], help="an example transcript (text file) the "
                   "understanding stage analyses (repeatable)")
    p.add_argument("--meta-dimensions", default=",".join(META), help="Bloom's meta-qualities judged beside the "
                   f"behaviour (comma-separated, or none; default {','.join(META)})")
    AUDIT_RUN.add_flags(p)


def _print_progress_and_paths(result: Any) -> None:
    """After the headline: whether the audit is complete, its wall time and where it is."""
    record = result.record
    if not record.get("complete", True):
        rollouts = record.get("rollouts", {})
        print(f"incomplete: {rollouts.get('recorded')} of {rollouts.get('expected')} rollouts "
              f"({record.get('budget_reason')}); rerun with a larger budget to continue")
    print(f"wall time {result.wall_s:.0f} s")
    print(f"run: {result.path}")
    print(f"transcripts: inspect view --log-dir {result.path / 'logs'}")


def run_command(args: argparse.Namespace) -> int:
    """Check names, run the audit, print the headline and where it is."""
    _print_progress_and_paths(AUDIT_RUN.run(args))
    return 0


def elicit_command(args: argparse.Namespace) -> int:
    """Run the chosen stages for one behaviour; a line per stage, then the audit's headline and the judgment."""
    from overseer.audit.elicit import elicit_stages
    from overseer.results import Estimate

    meta = () if args.meta_dimensions.strip() == "none" else tuple(
        m.strip() for m in args.meta_dimensions.split(",") if m.strip())
    out = elicit_stages(args.behavior, AUDIT_RUN.from_args(args), ideation_model=args.ideation_model,
                        scenarios=args.scenarios, variations=args.variations, vary_dimensions=args.vary,
                        modality=args.modality, examples=args.example, meta=meta, stages=args.stages,
                        force=args.force)
    if "understanding" in out.stages:
        print(f"understanding ({out.stages['understanding']}): {out.understanding}")
    if "ideation" in out.stages:
        bases = sum("variation" not in s.metadata for s in out.seeds)
        print(f"ideation ({out.stages['ideation']}): {bases} base scenarios and {len(out.seeds) - bases} variations "
              f"in {out.seeds_dir}")
    if out.run is not None and "rollout" in out.stages:
        AUDIT_RUN.print_headline(out.run)
        _print_progress_and_paths(out.run)
    if out.judgment is not None:
        print(f"judgment ({out.stages['judgment']}): {out.judgment_path}")
        for target, found in out.judgment["targets"].items():
            rates = "; ".join(f"{dim} {Estimate.from_dict(r):.3f} ({r['successes']}/{r['n']})"
                              for dim, r in found["qualities"].items())
            print(f"  {target}: {rates}")
        diversity = out.judgment["diversity"]
        print(f"  diversity: {diversity['value']:.0f}/10 ({diversity['model']})" if diversity["value"] is not None
              else f"  diversity: n/a ({diversity['reason']})")
    return 0


def train_judge_command(args: argparse.Namespace) -> int:
    """Train and save a classifier judge."""
    from overseer.audit.judges import train_classifier_judge

    path = train_classifier_judge(args.labels, args.out, base=args.base, threshold=args.threshold, epochs=args.epochs)
    print(f"classifier judge: {path} (use --judge classifier:{path})")
    return 0


def check_judge_command(args: argparse.Namespace) -> int:
    """Print each judge's separation of the planted transcripts."""
    from overseer.audit.judges import parse_judge_spec
    from overseer.audit.planted import check_judge
    from overseer.audit.roles import check_model
    from overseer.results import Estimate

    for spec in args.judge:
        kind, model = parse_judge_spec(spec)
        if kind != "classifier":
            check_model(model, "judge")
    for spec in args.judge:
        r = check_judge(spec, threshold=args.threshold)
        if "auroc" not in r:
            print(f"{spec}: {r['failed']} of {r['items']} planted transcripts failed to score; no AUROC")
            continue
        a = r["auroc"]
        print(f"{spec}: AUROC {Estimate.from_dict(a):.3f} over {r['items'] - r['failed']} "
              f"planted transcripts; present scored above absent in {r['pairs_ordered']} of {r['pairs']} pairs; "
              f"mean score present {r['mean_present']:.2f}, absent {r['mean_absent']:.2f}; accuracy at "
              f"{args.threshold:g}: {r['accuracy']:.3f}; failed {r['failed']}")
    return 0
