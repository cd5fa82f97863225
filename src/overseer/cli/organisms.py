"""``overseer organisms ...``: flags (or YAML) → config → :mod:`overseer.organisms`."""

from __future__ import annotations

import argparse

from overseer.cli._config_command import ConfigCommand, command_group

FAKING = ConfigCommand(
    "overseer.organisms.faking", "FakingConfig", thing="evaluation", command="alignment-faking",
    help="compliance gap between trained-on and unmonitored users (Greenblatt et al. 2024)",
    description="Python equivalent: overseer.organisms.faking.run(FakingConfig(...)). Default: SmolLM2-135M "
    "judged by a log-probability judge on itself (a plumbing check, not a finding).",
)
POISON = ConfigCommand(
    "overseer.organisms.poison", "PoisonConfig", thing="experiment", command="poison",
    help="poisoning dose-response: backdoor strength against the number of poisoned documents and the size of "
    "the clean data (Souly et al. 2025)",
    description="Python equivalent: overseer.organisms.poison.run(PoisonConfig(...)). Default: SmolLM2-135M, "
    "N in {0, 10, 40} poisoned documents on 40 and 160 clean Python reference paragraphs, the paper's "
    "prefix and gibberish lengths; each cell reports the poisoned share of documents and of tokens.",
)
IMPLANT = ConfigCommand(
    "overseer.organisms.implants", "ImplantConfig", thing="organism", redo="retrain", command="implant",
    help="fine-tune an organism with a known behaviour and its matched control; measure both",
    description="Python equivalent: overseer.organisms.implants.run(ImplantConfig(...)). Saves both, loadable "
    "as organism:NAME and organism:NAME-control. Default: flattery implanted in SmolLM2-135M with LoRA.",
)
TAMPERING = ConfigCommand(
    "overseer.organisms.tampering", "TamperingConfig", thing="evaluation", command="reward-tampering",
    help="sycophancy-to-subterfuge curriculum: sycophancy, flattery, checklist falsification, reward tampering "
    "(Denison et al. 2024)",
    description="Python equivalent: overseer.organisms.tampering.run(TamperingConfig(...)). Default: "
    "SmolLM2-135M, judged by a log-probability judge on itself (a plumbing check, not a finding).",
)
GAME = ConfigCommand(
    "overseer.organisms.game", "GameConfig", thing="game", redo="replay", command="audit-game",
    help="blinded organisms and controls: each audit technique's detection AUROC and the share of behaviours it "
    "names",
    description="Python equivalent: overseer.organisms.game.run(GameConfig(...)). Example: --train-behaviors "
    "flattery,sycophancy,product,triggered --model smollm2-135m trains (or reuses) four organisms and their "
    "controls, then plays with those eight.",
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``overseer organisms ...``, in this order."""
    top_sub = command_group(sub, "organisms", "model organisms and evaluations of unprompted behaviours")
    for command, func in ((FAKING, faking_command), (POISON, poison_command), (IMPLANT, implant_command),
                          (TAMPERING, tampering_command), (GAME, game_command)):
        command.add_parser(top_sub, func)


def faking_command(args: argparse.Namespace) -> int:
    """Run the evaluation; print the headline and where it is."""
    result = FAKING.run(args)
    print(f"run: {result.path}")
    print(f"rollouts and transcripts: {result.record['audit_run']}")
    return 0


def tampering_command(args: argparse.Namespace) -> int:
    """Run the curriculum; print the headline rates and where the run is."""
    result = TAMPERING.run(args)
    print(f"run: {result.path}")
    print(f"rollouts, transcripts and final files: {result.record['audit_run']}")
    return 0


def poison_command(args: argparse.Namespace) -> int:
    """Train and evaluate every (model, clean docs, N, seed) cell; print the curve and where it is."""
    from overseer.organisms.poison import dose_table

    result = POISON.run(args)
    print(dose_table(result.metrics["poison"]))
    print(f"run: {result.path}")
    return 0


def implant_command(args: argparse.Namespace) -> int:
    """Train organism and control, print their behaviour rates and the specs that load them."""
    result = IMPLANT.run(args)
    specs = result.record["specs"]
    print(f"load them as {specs['organism']} and {specs['control']}")
    print(f"run: {result.path}")
    return 0


def game_command(args: argparse.Namespace) -> int:
    """Play the audit game; print the technique table, each candidate's verdicts, and where the run is."""
    import json

    from overseer.organisms.game import candidates_table, run, technique_table

    result = run(GAME.from_args(args), force=args.force)
    GAME.print_reused(result)
    print(technique_table(result.metrics["techniques"]))
    print()
    records = [json.loads(line) for line in (result.path / "records.jsonl").read_text().splitlines()]
    print(candidates_table(records, list(result.metrics["techniques"])))
    print(f"run: {result.path}")
    if result.record.get("audit_run"):
        print(f"behavioural audit (transcripts): {result.record['audit_run']}")
    return 0
