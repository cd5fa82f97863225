"""Run the moral self-correction experiments: ``run(config) -> RunResult``, read top to bottom.

1. resolve the config (data fingerprint, model fingerprints); reuse the run if it already finished
   (the results layer's run lifecycle, :func:`overseer.results.start_run`);
2. load and sample every suite's data once (the same items under every model and condition);
3. for each model: resolve the scoring mode (``auto``: the most exact the model or server supports,
   :mod:`overseer.selfcorrect.scoring`); for each suite and condition: build the paper's prompts,
   generate chain-of-thought reasoning when the condition asks for it, score the answer options,
   decide each item's answer;
4. compute metrics with template-level bootstrap intervals, draw the figures, write the run directory
   (per-query records, per-item rows, figures, metrics.json last), which is published and indexed.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from overseer._progress import start_progress
from overseer._registry import lookup
from overseer.errors import OverseerError
from overseer.models import (
    HUMAN_ASSISTANT,
    Backend,
    GenerateConfig,
    check_model,
    get_backend,
    split_spec,
)
from overseer.results import Estimate, RunResult, RunWriter, start_run, summary_formatter
from overseer.selfcorrect.checks import check_run
from overseer.selfcorrect.config import SelfCorrectConfig, model_spec
from overseer.selfcorrect.prompts import LABELS, Condition, Query
from overseer.selfcorrect.scoring import (
    SAMPLE_TOKENS,
    Scoring,
    check_single_tokens,
    resolve,
    score,
    short_form,
    stage_counts,
)
from overseer.selfcorrect.suites import Suite

PILLAR = "selfcorrect"
# Rough cost of one chain-of-thought item relative to one scored item, per generated token; only
# used to weight the progress bar so its remaining-time estimate stays sensible across stages.
_GEN_COST_PER_TOKEN = 0.15


SelfCorrectResult = RunResult
"""What :func:`run` returns: the results layer's one result type (``metrics[model][suite][condition]``)."""


@summary_formatter(PILLAR)
def summary_table(result: RunResult) -> str:
    """One line per model and condition: BBQ bias scores, Winogender correlation, law-school gap."""
    labels: dict[str, str] = result.record.get("labels", {})
    lines = []
    scoring: dict[str, Any] = result.record.get("scoring") or {}
    for model, per_suite in result.metrics.items():
        used = scoring.get(model) or {}
        lines.append(f"model {model}" + (f"  (scoring: {used['describe']})" if used.get("describe") else ""))
        failed = sum(s.get("n_failed", 0) for s in (used.get("stages") or {}).values())
        unparsed = sum(s.get("n_unparsed", 0) for s in (used.get("stages") or {}).values())
        if unparsed:
            total = sum(s.get("n_samples", 0) for s in used["stages"].values())
            lines.append(f"  {unparsed} of {total} sampled answers named no option; {failed} items had none that did")
        for cond, label in labels.items():
            cells = []
            if cond in per_suite.get("bbq", {}):
                s_amb, s_dis = (Estimate.from_dict(per_suite["bbq"][cond]["overall"][k]) for k in ("s_amb", "s_dis"))
                cells.append(f"BBQ s_AMB {s_amb:+.3f}  s_DIS {s_dis:+.3f}")
            if cond in per_suite.get("winogender", {}):
                cells.append(f"Winogender rho {Estimate.from_dict(per_suite['winogender'][cond].get('rho')):+.3f}")
            if cond in per_suite.get("law", {}):
                cells.append(f"law gap {Estimate.from_dict(per_suite['law'][cond].get('gap')):+.3f}")
            if cells:
                lines.append(f"  {label:<14} " + " | ".join(cells))
    return "\n".join(lines)


# --------------------------------------------------------------------------- config resolution


def _data_fingerprint(cfg: SelfCorrectConfig) -> str:
    """Sizes and mtimes of the data files the suites read: a changed file means a new run."""
    root = cfg.data_path
    paths: list[Path] = []
    if "bbq" in cfg.suites and not (cfg.bbq_source or "").startswith("hf:"):
        paths += sorted(Path(cfg.bbq_source or root / "bbq").glob("*.jsonl"))
    if "winogender" in cfg.suites:
        paths += [root / "winogender" / "templates.tsv", root / "winogender" / "occupations-stats.tsv"]
    if "law" in cfg.suites:
        paths.append(root / "law_school" / "law_data.csv")
    parts = [(p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in paths if p.is_file()]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def _model_identity(name: str, cfg: SelfCorrectConfig) -> dict[str, Any]:
    return make_backend(name, cfg).identity()  # cheap: nothing is loaded or contacted


def resolved_config(cfg: SelfCorrectConfig) -> dict[str, Any]:
    """The run's identity: results-relevant fields plus data and model fingerprints."""
    return {
        **cfg.identity(),
        "data_fingerprint": _data_fingerprint(cfg),
        "model_identity": {m: _model_identity(m, cfg) for m in cfg.models},
    }


# --------------------------------------------------------------------------- backends


def make_backend(name: str, cfg: SelfCorrectConfig, refresh_cache: bool = False) -> Backend:
    """The backend for ``name`` (any model spec), with the config's device, batching and server settings.

    ``refresh_cache`` makes a served model ask the server again instead of reading cached answers.
    """
    spec = model_spec(name, cfg)
    template = HUMAN_ASSISTANT if cfg.chat_format == HUMAN_ASSISTANT else None
    kind, _ = split_spec(spec)
    options: dict[str, Any] = {}
    if kind == "hf":
        options = {"device": cfg.device, "dtype": cfg.dtype, "batch_size": cfg.batch_size, "template": template}
    elif kind == "openai":
        options = {
            "tokenizer": cfg.endpoint_tokenizer if template is None else None,
            "generation": cfg.endpoint_generation,
            "requests_per_second": cfg.endpoint_rps,
            "concurrency": cfg.endpoint_concurrency,
            "timeout_s": cfg.endpoint_timeout,
            "max_retries": cfg.endpoint_retries,
            "api_key_env": cfg.api_key_env,
            "refresh_cache": refresh_cache,
        }
    return get_backend(spec, **options)


# --------------------------------------------------------------------------- evaluation


def _chunks(queries: list[Query], size: int) -> Iterator[list[Query]]:
    for start in range(0, len(queries), size):
        yield queries[start : start + size]


def evaluate(
    backend: Backend,
    queries: list[Query],
    cot_max_new_tokens: int,
    chunk: int = 32,
    advance: Callable[[int], None] | None = None,
    scoring: Scoring | None = None,
) -> list[dict[str, Any]]:
    """Score every query (after generating its reasoning, for chain of thought); one record per query.

    ``scoring`` says how (default: full log-probabilities); outside full scoring, queries with letter
    stand-ins are asked in their short form. A query that cannot be scored is recorded with
    ``status="failed"`` and its error, never dropped.
    """
    scoring = scoring or Scoring()
    if scoring.mode != "full":
        queries = [short_form(q) for q in queries]
    records: list[dict[str, Any]] = []
    for number, part in enumerate(_chunks(queries, chunk)):
        reasoning: list[str | None] = [None] * len(part)
        chats = [q.chat for q in part]
        if part[0].cot is not None:
            samples = backend.generate([q.cot_chat() for q in part], GenerateConfig(max_new_tokens=cot_max_new_tokens))
            reasoning = [g[0].text.strip() if g[0].ok else None for g in samples]
            chats = [q.with_reasoning(r or "") for q, r in zip(part, reasoning, strict=True)]
        scores = score(backend, chats, [q.options for q in part], scoring, seed_offset=number * chunk)
        for q, chat, text, fields in zip(part, chats, reasoning, scores, strict=True):
            if q.cot is not None and text is None:
                fields = {"option_logprobs": None, "option_tokens": None, "status": "failed",
                          "error": "the chain-of-thought request for this item was rejected"}
            records.append(
                {
                    "item_id": q.item_id,
                    "group": q.group,
                    **dict(q.meta),
                    "prompt": backend.render(chat),
                    "options": list(q.options),
                    "scoring": scoring.mode,
                    "reasoning": text,
                    **fields,
                }
            )
        if advance is not None:
            advance(len(part))
    return records


@dataclass(frozen=True)
class _Stage:
    suite: Suite
    condition: Condition
    queries: list[Query]

    def weight(self, cot_tokens: int) -> float:
        per = 1.0 + (_GEN_COST_PER_TOKEN * cot_tokens if self.condition.cot else 0.0)
        return per * len(self.queries)


def _plan(cfg: SelfCorrectConfig, items: dict[str, list[Any]]) -> list[_Stage]:
    stages = []
    for suite_name in cfg.suites:
        suite: Suite = lookup("suite", suite_name)
        for cond_name in cfg.conditions:
            if cond_name not in suite.conditions:
                continue
            condition: Condition = lookup("condition", cond_name)
            stages.append(_Stage(suite, condition, suite.queries(items[suite_name], condition, cfg)))
    if not stages:
        raise OverseerError(
            f"no suite runs under conditions {', '.join(cfg.conditions)} "
            "(match applies to winogender only)"
        )
    return stages


# --------------------------------------------------------------------------- results


def _summary(metrics: dict[str, Any], cfg: SelfCorrectConfig, scoring: dict[str, Any]) -> dict[str, Any]:
    """Flat headline numbers for the runs index: ``<suite>_<metric>_<condition>`` (model-prefixed if several)."""
    out: dict[str, Any] = {"models": ",".join(cfg.models), "conditions": ",".join(cfg.conditions),
                           "scoring": ",".join(scoring[m]["mode"] for m in cfg.models)}
    for model, per_suite in metrics.items():
        prefix = "" if len(cfg.models) == 1 else f"{model}:"
        for suite_name, per_cond in per_suite.items():
            key = lookup("suite", suite_name).headline
            for cond, block in per_cond.items():
                value = (block.get(key) or {}).get("value") if suite_name != "bbq" else block["overall"][key]["value"]
                out[f"{prefix}{suite_name}_{key}_{cond}"] = None if value is None else round(float(value), 4)
    return out


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w") as fh:
        for row in rows:
            fh.write(json.dumps(row, default=str) + "\n")


def _save_figures(
    run: RunWriter, metrics: dict[str, Any], items: list[dict[str, Any]], cfg: SelfCorrectConfig
) -> list[str]:
    """Draw the run's figures into it, each as ``<name>.png`` (300 dpi) and ``<name>.pdf``; return the file names."""
    import matplotlib.pyplot as plt

    from overseer.results.plots import save_figure
    from overseer.selfcorrect import plots

    saved = []
    figures = {"overview": plots.plot_overview(metrics, cfg.models, cfg.conditions)}
    if "bbq" in cfg.suites:
        figures["bbq_categories"] = plots.plot_bbq_categories(metrics, cfg.models, cfg.conditions)
    if "winogender" in cfg.suites:
        first = cfg.models[0]
        rows = [r for r in items if r["suite"] == "winogender" and r["model"] == first]
        figures["winogender_scatter"] = plots.plot_winogender_scatter(
            rows, cfg.conditions, model=first, metrics=metrics.get(first, {}).get("winogender"))
    for stem, fig in figures.items():
        saved += [p.name for p in save_figure(fig, run.file(f"{stem}.png").parent, stem)]
        plt.close(fig)
    return saved


def run(cfg: SelfCorrectConfig, force: bool = False) -> RunResult:
    """Run (or, unless ``force``, reuse a finished identical run of) ``cfg``; returns where the results are.

    Names and paths (data files, models, runs directory) are checked first, before anything is loaded
    or written (:func:`overseer.selfcorrect.checks.check_run`). Progress (items done of the total,
    rate, ETA) is shown unless ``cfg.progress`` is off: a bar on a terminal, a line every 30 s otherwise.
    """
    check_run(cfg)
    config = resolved_config(cfg)
    writer = start_run(PILLAR, config, cfg.runs_dir, force=force, resolved={**cfg.to_dict(), **config})
    if writer.existing:
        return writer.existing
    for model in cfg.models:  # a local model's missing device or unreachable hub id fails now, before the data
        if split_spec(model_spec(model, cfg))[0] == "hf":
            check_model(model, cfg.device)

    # -- data: one sample per suite, shared by every model and condition
    items = {name: lookup("suite", name).load(cfg) for name in cfg.suites}
    stages = _plan(cfg, items)

    total = sum(s.weight(cfg.cot_max_new_tokens) for s in stages) * len(cfg.models)
    # Chain of thought weighs an item by its generation cost, so the count is then in item-equivalents.
    unit = "units" if any(s.condition.cot for s in stages) else "items"
    bar = start_progress(total, PILLAR, unit, enabled=cfg.progress, leave=True)

    def advance(units: float) -> None:
        # Float units can sum past the total by a rounding error; tqdm would warn about it.
        bar.update(min(units, max(bar.total - bar.n, 0.0)))

    records: list[dict[str, Any]] = []
    item_rows: list[dict[str, Any]] = []
    metrics: dict[str, Any] = {}
    timings: dict[str, float] = {}
    requests: dict[str, dict[str, int]] = {}
    scoring: dict[str, Any] = {}
    try:
        for model in cfg.models:
            bar.set_description(f"loading {model}")
            backend = make_backend(model, cfg, refresh_cache=force)
            mode, support = resolve(backend, cfg.scoring)
            how = Scoring(mode, cfg.top_logprobs, cfg.samples, cfg.sample_temperature, cfg.seed)
            used = scoring[model] = {"requested": cfg.scoring, "mode": mode, "describe": how.describe(),
                                     "supported": list(support.modes), "server": support.server,
                                     "missing": dict(support.missing), "stages": {}}
            if mode == "first_token":
                used["top_logprobs"] = cfg.top_logprobs
                checked = [check_single_tokens(backend, [short_form(q) for q in s.queries], s.suite.name)
                           for s in stages]
                used["single_token_check"] = "passed" if all(checked) else (
                    "not possible (no tokenizer known); see option_mass and absent_options")
            elif mode == "sampled":
                used.update(samples=cfg.samples, temperature=cfg.sample_temperature,
                            max_new_tokens=SAMPLE_TOKENS)
            for stage in stages:
                suite, cond = stage.suite, stage.condition
                bar.set_description(f"{model} {suite.name} {LABELS[cond.name]}")
                per = stage.weight(cfg.cot_max_new_tokens) / max(len(stage.queries), 1)
                t0 = time.monotonic()
                recs = evaluate(
                    backend, stage.queries, cfg.cot_max_new_tokens, advance=lambda n, p=per: advance(n * p),
                    scoring=how,
                )
                used["stages"][f"{suite.name}/{cond.name}"] = stage_counts(recs, mode)
                timings[f"{model}/{suite.name}/{cond.name}"] = round(time.monotonic() - t0, 2)
                tags = {"model": model, "suite": suite.name, "condition": cond.name}
                records += [{**tags, **r} for r in recs]
                rows = suite.decide(items[suite.name], recs, cfg)
                item_rows += [{**tags, **r} for r in rows]
                metrics.setdefault(model, {}).setdefault(suite.name, {})[cond.name] = suite.metrics(rows, cfg)
            if getattr(backend, "stats", None):  # served models: requests sent, answers from the cache, retries
                requests[model] = dict(backend.stats)
    finally:
        bar.close()

    with writer:
        _write_jsonl(writer.file("records.jsonl"), records)
        _write_jsonl(writer.file("items.jsonl"), item_rows)
        writer.finish(
            metrics,
            timings={"stages_s": timings, **({"endpoint_requests": requests} if requests else {})},
            summary=_summary(metrics, cfg, scoring),
            scoring=scoring,
            labels={c: LABELS[c] for c in cfg.conditions},
            n_items={name: len(v) for name, v in items.items()},
            n_failed_queries=sum(r["status"] != "ok" for r in records),
            figures=_save_figures(writer, metrics, item_rows, cfg),
        )
    return writer.result
