"""How far first-token and sampled scoring agree with full log-probability scoring, on one model and sample.

A served model without prompt echo can only be read by its first token or by sampled answers
(:mod:`overseer.selfcorrect.scoring`). On a local model all three modes run, so
:func:`scoring_agreement` runs the same configuration once per mode (each an ordinary, reusable run)
and compares them with full scoring: the Pearson correlation of the per-prompt option probabilities
(every option of every prompt scored in both runs, pooled per suite and condition), how often the
chosen option is the same, and each suite's bias scores side by side with their intervals.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np

from overseer.results import Estimate, RunResult
from overseer.selfcorrect.config import SelfCorrectConfig
from overseer.selfcorrect.metrics import normalized_probs, option_probs, pearson

__all__ = ["COMPARED", "agreement_table", "scoring_agreement"]

COMPARED = ("first_token", "sampled")
_SCORES = {"bbq": ("s_amb", "s_dis", "acc_amb", "acc_dis"), "winogender": ("rho", "p_female"),
           "law": ("gap", "p_yes_black", "p_yes_white")}


def _records(result: RunResult) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (result.path / "records.jsonl").read_text().splitlines()]


def _probs(record: dict[str, Any], normalize: str) -> np.ndarray:
    """The option probabilities a record's decision rests on (BBQ full: per-token or summed log-probs)."""
    if record.get("option_probs") is None and record["suite"] == "bbq" and normalize == "mean":
        return normalized_probs([lp / max(n, 1) for lp, n in
                                 zip(record["option_logprobs"], record["option_tokens"], strict=True)])
    return option_probs(record)


def _key(record: dict[str, Any]) -> tuple[str, ...]:
    return (record["model"], record["suite"], record["condition"], record["item_id"], str(record.get("order")))


def _score(block: dict[str, Any], suite: str, name: str) -> dict[str, Any] | None:
    found = block["overall"].get(name) if suite == "bbq" else block.get(name)
    return found if isinstance(found, dict) else None


def scoring_agreement(cfg: SelfCorrectConfig, force: bool = False) -> dict[str, Any]:
    """Run ``cfg`` under full, first-token and sampled scoring and compare the last two with the first.

    Returns ``{"runs": {mode: path}, "models": {model: {"<suite>/<condition>": {...}}}}`` where each
    block holds, for each compared mode, ``r_probs`` (Pearson r of option probabilities against full
    scoring, over ``n_options`` pairs from ``n_prompts`` prompts scored in both), ``same_choice`` (share
    of those prompts whose most likely option is the same) and ``scores`` (the suite's scores in every
    mode, full included, as estimates with intervals).
    """
    from overseer.selfcorrect.run import run

    results = {mode: run(replace(cfg, scoring=mode), force=force) for mode in ("full", *COMPARED)}
    records = {mode: {_key(r): r for r in _records(res) if r["status"] == "ok"} for mode, res in results.items()}
    out: dict[str, Any] = {"runs": {mode: str(res.path) for mode, res in results.items()}, "models": {}}
    for model in cfg.models:
        per_model: dict[str, Any] = {}
        for suite, per_cond in results["full"].metrics[model].items():
            for cond in per_cond:
                block: dict[str, Any] = {"scores": {}}
                for mode, res in results.items():
                    mine = res.metrics[model][suite][cond]
                    block["scores"][mode] = {name: _score(mine, suite, name) for name in _SCORES[suite]}
                for mode in COMPARED:
                    keys = [k for k in records["full"] if k[:3] == (model, suite, cond) and k in records[mode]]
                    full = [_probs(records["full"][k], cfg.normalize) for k in keys]
                    other = [_probs(records[mode][k], cfg.normalize) for k in keys]
                    flat_full = np.concatenate(full) if keys else np.array([])
                    flat_other = np.concatenate(other) if keys else np.array([])
                    same = [int(np.argmax(a) == np.argmax(b)) for a, b in zip(full, other, strict=True)]
                    block[mode] = {
                        "n_prompts": len(keys),
                        "n_options": int(flat_full.size),
                        "r_probs": pearson(flat_full, flat_other) if keys else None,
                        "same_choice": float(np.mean(same)) if same else None,
                    }
                per_model[f"{suite}/{cond}"] = block
        out["models"][model] = per_model
    return out


def agreement_table(found: dict[str, Any]) -> str:
    """The agreement as text: per model, suite and condition, r and same-choice share, then the scores."""
    lines = []
    modes = ("full", *COMPARED)
    for model, blocks in found["models"].items():
        lines.append(f"model {model}: agreement with full log-prob scoring")
        for stage, block in blocks.items():
            parts = [f"{m}: r={_num(block[m]['r_probs'])} same choice {_num(block[m]['same_choice'])} "
                     f"({block[m]['n_prompts']} prompts)" for m in COMPARED]
            lines.append(f"  {stage:<16} " + " | ".join(parts))
            for name, by_mode in _transpose(block["scores"], modes).items():
                cells = "  ".join(f"{m} {Estimate.from_dict(by_mode[m]):+.3f}" if by_mode[m] else f"{m} n/a"
                                  for m in modes)
                lines.append(f"    {name:<12} {cells}")
    return "\n".join(lines)


def _transpose(scores: dict[str, dict[str, Any]], modes: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    names = next(iter(scores.values())).keys()
    return {name: {m: scores[m][name] for m in modes} for name in names}


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
