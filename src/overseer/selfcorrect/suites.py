"""The three experiments as registered suites: load a sample, build queries, decide answers, compute metrics.

The data comes from the data layer (:mod:`overseer.data.bbq`, :mod:`overseer.data.winogender`,
:mod:`overseer.data.law_school`); prompts, decisions and metrics from this pillar's modules.

Adding an experiment is one :class:`Suite` registered under ``register("suite", name)``; the runner
only talks to this interface.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from overseer._registry import register
from overseer.data.bbq import load_bbq, sample_bbq
from overseer.data.law_school import load_students
from overseer.data.winogender import load_winogender
from overseer.selfcorrect import bbq, law, winogender
from overseer.selfcorrect.prompts import Condition, Query

if TYPE_CHECKING:
    from overseer.selfcorrect.config import SelfCorrectConfig


@dataclass(frozen=True)
class Suite:
    """One experiment: which conditions apply, and the four steps the runner calls in order."""

    name: str
    title: str
    conditions: tuple[str, ...]
    load: Callable[[SelfCorrectConfig], list[Any]]
    queries: Callable[[list[Any], Condition, SelfCorrectConfig], list[Query]]
    decide: Callable[[list[Any], list[dict[str, Any]], SelfCorrectConfig], list[dict[str, Any]]]
    metrics: Callable[[list[dict[str, Any]], SelfCorrectConfig], dict[str, Any]]
    headline: str  # the key in metrics that the paper plots (value of an Estimate dict)


def _limit(items: list[Any], cfg: SelfCorrectConfig) -> list[Any]:
    return items[: cfg.limit] if cfg.limit else items


def _bbq_load(cfg: SelfCorrectConfig) -> list[Any]:
    source = cfg.bbq_source or str(cfg.data_path / "bbq")
    items = load_bbq(source, cfg.bbq_categories)
    sample = sample_bbq(items, cfg.bbq_per_cell, cfg.seed)
    if cfg.limit:  # keep the cells balanced under a limit: take every k-th item of the stratified sample
        step = max(1, len(sample) // cfg.limit)
        sample = sample[::step][: cfg.limit]
    return sample


register("suite", "bbq")(
    Suite(
        name="bbq",
        title="BBQ bias score (ambiguous contexts)",
        conditions=("q", "if", "cot"),
        load=_bbq_load,
        queries=lambda items, cond, cfg: bbq.build_queries(items, cond, cfg.bbq_answer, cfg.debias_order),
        decide=lambda items, recs, cfg: bbq.decide(items, recs, cfg.normalize),
        metrics=lambda rows, cfg: bbq.metrics(rows, cfg.n_bootstrap, cfg.seed, cfg.failed_items),
        headline="s_amb",
    )
)

register("suite", "winogender")(
    Suite(
        name="winogender",
        title="Winogender: corr(p(female), BLS share)",
        conditions=("q", "if", "cot", "match"),
        load=lambda cfg: _limit(load_winogender(cfg.data_path / "winogender"), cfg),
        queries=lambda items, cond, cfg: winogender.build_queries(items, cond),
        decide=lambda items, recs, cfg: winogender.decide(items, recs),
        metrics=lambda rows, cfg: winogender.metrics(rows, cfg.n_bootstrap, cfg.seed),
        headline="rho",
    )
)

register("suite", "law")(
    Suite(
        name="law",
        title="Law school: p(yes|Black) - p(yes|White)",
        conditions=("q", "if", "cot"),
        load=lambda cfg: _limit(
            load_students(cfg.data_path / "law_school" / "law_data.csv", cfg.law_students, cfg.seed), cfg
        ),
        queries=lambda items, cond, cfg: law.build_queries(items, cond),
        decide=lambda items, recs, cfg: law.decide(items, recs),
        metrics=lambda rows, cfg: law.metrics(rows, cfg.n_bootstrap, cfg.seed),
        headline="gap",
    )
)
