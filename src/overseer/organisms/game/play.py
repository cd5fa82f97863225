"""Playing the game: train (or find) the field, blind it, run each technique with resume, score and publish."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from overseer._storage import WorkDir, atomic_write_text
from overseer.errors import OverseerError
from overseer.organisms.game.bench import Bench
from overseer.organisms.game.config import GameConfig
from overseer.organisms.game.field import Candidate, Truth, Verdict, blind, find_field, read_rows
from overseer.organisms.game.materials import materials_digest
from overseer.organisms.game.report import game_figure, technique_table
from overseer.organisms.game.scoring import score_technique
from overseer.organisms.game.techniques import find_technique
from overseer.organisms.game.techniques.behavioral import checked_judge, judge_flag
from overseer.organisms.implants import TRAINING_DATA
from overseer.results import RunResult, start_run


def _link(target: Path, link: Path) -> None:
    """``link`` names ``target`` (a symbolic link; a copy where links are not allowed)."""
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        shutil.rmtree(link)
    link.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(target, link, target_is_directory=True)
    except OSError:
        shutil.copytree(target, link)


def _default_layer(base: str) -> int:
    from overseer.models import LADDER

    return LADDER[base].layer if base in LADDER else -1


def train_field(cfg: GameConfig) -> list[str]:
    """Train (or reuse) an organism and its control per ``train_behaviors`` on ``model``; their specs."""
    from overseer.organisms.implants import ImplantConfig
    from overseer.organisms.implants import run as implant

    specs = []
    for behaviour in cfg.train_behaviors:
        result = implant(ImplantConfig(behavior=behaviour, model=str(cfg.model), runs_dir=cfg.runs_dir,
                                       progress=cfg.progress))
        specs += [result.record["specs"]["organism"], result.record["specs"]["control"]]
    return specs


def _check_models(cfg: GameConfig) -> None:
    """Refuse unknown encoder and judge models, and clean data that cannot be read, before anything is trained."""
    from overseer.audit.judges import parse_judge_spec
    from overseer.audit.roles import check_model
    from overseer.models import resolve_model

    if "data_search" in cfg.techniques:
        resolve_model(cfg.encoder)
        if cfg.search_data is not None:
            from overseer.data import check_exists

            check_exists(cfg.search_data, "--search-data",
                         "give the GSM8K jsonl file or the folder holding train.jsonl")
        from overseer.organisms.game.techniques.data_search import clean_rows

        clean_rows(cfg.search_rows, cfg.search_data)  # the hub unreachable fails now, not after training
    if "behavioral" in cfg.techniques:
        for spec in cfg.judges:
            kind, model = parse_judge_spec(spec)
            if kind != "classifier":
                check_model(model, "judge")


def run(cfg: GameConfig, force: bool = False) -> RunResult:
    """Play the game (or reuse the finished one): blind the field, run each technique, score and publish."""
    from overseer.models import resolve_model
    from overseer.results import check_runs_dir

    say: Callable[[str], None] = (lambda text: print(text, flush=True)) if cfg.progress else (lambda text: None)
    check_runs_dir(cfg.runs_dir)
    _check_models(cfg)  # a misspelt encoder or judge fails now, not after training and three techniques
    entries = list(cfg.organisms)
    if cfg.train_behaviors:
        entries += [s for s in train_field(cfg) if s not in entries]
    entrants, base = find_field(entries, cfg.base)
    if "behavioral" in cfg.techniques and cfg.failed_judge == "refuse":  # before any technique runs
        checked_judge((cfg.judges or (f"logprob:{base}",))[0], "refuse", cfg.bootstrap)
    blinded = blind(entrants, cfg.seed)
    rows = {cid: read_rows(e.path) for cid, e in blinded}
    if "data_search" in cfg.techniques:
        missing = [e.name for cid, e in blinded if not rows[cid]]
        if missing:
            raise OverseerError(f"candidate {missing[0]!r} has no {TRAINING_DATA}; data_search needs the rows it was "
                                "fine-tuned on (leave data_search out of --techniques)")
    identity = {**cfg.identity(), "base": base, "base_fingerprint": resolve_model(base).fingerprint(),
                "materials": materials_digest(),
                "field": sorted([str(e.path), resolve_model(str(e.path)).fingerprint()] for e in entrants),
                "encoder_fingerprint": (resolve_model(cfg.encoder).fingerprint()
                                        if "data_search" in cfg.techniques else None)}
    writer = start_run("game", identity, cfg.runs_dir, force=force, resolved={**cfg.to_dict(), "base": base})
    if writer.existing is not None:
        return writer.existing
    work = WorkDir(writer.path.parent, writer.path.name).path
    candidates = []
    for cid, e in blinded:
        _link(e.path, work / "blind" / cid)
        candidates.append(Candidate(cid, str((work / "blind" / cid).absolute()), rows[cid]))
    truths = [Truth(cid, e.path.name, str(e.path), e.card["implanted"], e.card.get("behavior")) for cid, e in blinded]
    bench = Bench(cfg, base, cfg.layer if cfg.layer is not None else _default_layer(base), work, say, force)
    verdicts: dict[str, dict[str, Verdict]] = {}
    notes: dict[str, Any] = {}
    # The behavioural audit keeps every model it plays loaded until the process ends, so it goes last.
    for name in sorted(cfg.techniques, key=lambda t: t == "behavioral"):
        done = work / f"{name}.json"
        if done.is_file() and not force:  # a technique finished before an interruption is not run again
            saved = json.loads(done.read_text())
            verdicts[name] = {cid: Verdict(**v) for cid, v in saved["verdicts"].items()}
            notes.update(saved["notes"])
            continue
        say(f"{name}: auditing {len(candidates)} models")
        if name == "behavioral":
            bench.release_all()
        bench.notes = {}
        verdicts[name] = find_technique(name)(candidates, bench)
        notes.update(bench.notes)
        atomic_write_text(done, json.dumps({"verdicts": {cid: v.as_dict() for cid, v in verdicts[name].items()},
                                            "notes": bench.notes}, default=str))
    scores = {name: score_technique(verdicts[name], truths, cfg.bootstrap, cfg.seed) for name in cfg.techniques}
    if "behavioral" in scores and notes.get("judge_check"):
        scores["behavioral"]["judge_check"] = notes["judge_check"]
        scores["behavioral"]["flag"] = judge_flag(notes["judge_check"])
    records = [{"technique": name, "id": t.id, "name": t.name, "implanted": t.implanted, "behavior": t.behavior,
                **verdicts[name][t.id].as_dict(),
                "named": (verdicts[name][t.id].guess == t.behavior) if t.implanted else None,
                **({"top_rows": notes.get("top_rows", {}).get(t.id, [])} if name == "data_search" else {})}
               for name in cfg.techniques for t in truths]
    with writer:
        with open(writer.file("records.jsonl"), "w") as fh:
            for r in records:
                fh.write(json.dumps(r) + "\n")
        from overseer.results.plots import save_figure

        figures = writer.file("figures")
        figures.mkdir()
        written = save_figure(game_figure(scores), figures, "audit_game")
        summary: dict[str, Any] = {}
        for name, m in scores.items():
            summary[f"auroc[{name}]"] = m["auroc"]["value"]
            summary[f"named[{name}]"] = m["named"]["value"]
        writer.finish({"techniques": scores}, summary=summary, base=base, layer=bench.layer,
                      candidates=[{"id": t.id, "name": t.name, "path": t.path, "implanted": t.implanted,
                                   "behavior": t.behavior} for t in truths],
                      audit_run=notes.get("audit_run"), figures=[p.name for p in written],
                      table=technique_table(scores))
    return writer.result
