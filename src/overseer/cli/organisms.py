"""``overseer organisms ...``: flags (or YAML) → config → :mod:`overseer.organisms`."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from overseer._config import LazyFlagsParser


def _config_flags(module: str, config: str, force_help: str) -> Callable[[argparse.ArgumentParser], None]:
    """``--config``, ``--force`` and one flag per field of ``overseer.organisms.<module>.<config>`` (imported late)."""

    def add(p: argparse.ArgumentParser) -> None:
        import importlib

        from overseer._config import add_flags

        cls = getattr(importlib.import_module(f"overseer.organisms.{module}"), config)
        p.add_argument("--config", help=f"YAML file of {config} options; flags override it")
        p.add_argument("--force", action="store_true", help=force_help)
        add_flags(p, cls)

    return add


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``overseer organisms ...``."""
    top = sub.add_parser("organisms", help="model organisms and evaluations of unprompted behaviours")
    top_sub = top.add_subparsers(dest="organisms_command", required=True, metavar="COMMAND",
                                 parser_class=LazyFlagsParser)
    p = top_sub.add_parser(
        "alignment-faking", help="compliance gap between trained-on and unmonitored users (Greenblatt et al. 2024)",
        description="Python equivalent: overseer.organisms.faking.run(FakingConfig(...)). Default: SmolLM2-135M "
        "judged by a log-probability judge on itself (a plumbing check, not a finding).",
        add_config_flags=_config_flags("faking", "FakingConfig", "recompute even if this exact evaluation is finished"),
    )
    p.set_defaults(func=faking_command)
    p = top_sub.add_parser(
        "poison", help="poisoning dose-response: backdoor strength against the number of poisoned documents "
        "(Souly et al. 2025)",
        description="Python equivalent: overseer.organisms.poison.run(PoisonConfig(...)). Default: the ladder's "
        "smallest and largest rungs, N in {0, 100, 250}, on Python reference paragraphs (about 40 min on 2 cores).",
        add_config_flags=_config_flags("poison", "PoisonConfig", "recompute even if this exact experiment is finished"),
    )
    p.set_defaults(func=poison_command)
    p = top_sub.add_parser(
        "implant", help="fine-tune an organism with a known behaviour and its matched control; measure both",
        description="Python equivalent: overseer.organisms.implants.run(ImplantConfig(...)). Saves both, loadable "
        "as organism:NAME and organism:NAME-control. Default: flattery implanted in SmolLM2-135M with LoRA.",
        add_config_flags=_config_flags("implants", "ImplantConfig", "retrain even if this exact organism is finished"),
    )
    p.set_defaults(func=implant_command)
    p = top_sub.add_parser(
        "reward-tampering", help="sycophancy-to-subterfuge curriculum: sycophancy, flattery, checklist "
        "falsification, reward tampering (Denison et al. 2024)",
        description="Python equivalent: overseer.organisms.tampering.run(TamperingConfig(...)). Default: "
        "SmolLM2-135M, judged by a log-probability judge on itself (a plumbing check, not a finding).",
        add_config_flags=_config_flags("tampering", "TamperingConfig",
                                       "recompute even if this exact evaluation is finished"),
    )
    p.set_defaults(func=tampering_command)
    p = top_sub.add_parser(
        "audit-game", help="blinded organisms and controls: each audit technique's detection AUROC and the share "
        "of behaviours it names",
        description="Python equivalent: overseer.organisms.game.run(GameConfig(...)). Example: --train-behaviors "
        "flattery,sycophancy,product,triggered --model smollm2-135m trains (or reuses) four organisms and their "
        "controls, then plays with those eight.",
        add_config_flags=_config_flags("game", "GameConfig", "replay even if this exact game is finished"),
    )
    p.set_defaults(func=game_command)



def faking_command(args: argparse.Namespace) -> int:
    """Run the evaluation; print the headline and where it is."""
    from overseer._config import flag_values, from_sources
    from overseer.organisms.faking import FakingConfig, run

    result = run(from_sources(FakingConfig, args.config, flag_values(FakingConfig, args)), force=args.force)
    if result.reused:
        print("finished evaluation found with this exact config; reusing it (--force to recompute)")
    print(result.summary_line())
    print(f"run: {result.path}")
    print(f"rollouts and transcripts: {result.record['audit_run']}")
    return 0



def tampering_command(args: argparse.Namespace) -> int:
    """Run the curriculum; print the headline rates and where the run is."""
    from overseer._config import flag_values, from_sources
    from overseer.organisms.tampering import TamperingConfig, run

    result = run(from_sources(TamperingConfig, args.config, flag_values(TamperingConfig, args)), force=args.force)
    if result.reused:
        print("finished evaluation found with this exact config; reusing it (--force to recompute)")
    print(result.summary_line())
    print(f"run: {result.path}")
    print(f"rollouts, transcripts and final files: {result.record['audit_run']}")
    return 0



def poison_command(args: argparse.Namespace) -> int:
    """Train and evaluate every (model, N, seed) cell; print the curve and where it is."""
    from overseer._config import flag_values, from_sources
    from overseer.organisms.poison import PoisonConfig, run

    result = run(from_sources(PoisonConfig, args.config, flag_values(PoisonConfig, args)), force=args.force)
    if result.reused:
        print("finished experiment found with this exact config; reusing it (--force to recompute)")
    print(result.summary_line())
    print(f"run: {result.path}")
    return 0



def implant_command(args: argparse.Namespace) -> int:
    """Train organism and control, print their behaviour rates and the specs that load them."""
    from overseer._config import flag_values, from_sources
    from overseer.organisms.implants import ImplantConfig, run

    result = run(from_sources(ImplantConfig, args.config, flag_values(ImplantConfig, args)), force=args.force)
    if result.reused:
        print("finished organism found with this exact config; reusing it (--force to retrain)")
    print(result.summary_line())
    specs = result.record["specs"]
    print(f"load them as {specs['organism']} and {specs['control']}")
    print(f"run: {result.path}")
    return 0



def game_command(args: argparse.Namespace) -> int:
    """Play the audit game; print the technique table, each candidate's verdicts, and where the run is."""
    import json

    from overseer._config import flag_values, from_sources
    from overseer.organisms.game import GameConfig, candidates_table, run, technique_table

    cfg = from_sources(GameConfig, args.config, flag_values(GameConfig, args))
    result = run(cfg, force=args.force)
    if result.reused:
        print("finished game found with this exact config; reusing it (--force to replay)")
    print(technique_table(result.metrics["techniques"]))
    print()
    records = [json.loads(line) for line in (result.path / "records.jsonl").read_text().splitlines()]
    print(candidates_table(records, list(result.metrics["techniques"])))
    print(f"run: {result.path}")
    if result.record.get("audit_run"):
        print(f"behavioural audit (transcripts): {result.record['audit_run']}")
    return 0
