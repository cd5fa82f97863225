"""``overseer.guard.run``: build data from a constitution, train and calibrate the classifiers, attack every defence.

Stages finish into a work directory beside the run (``.<run name>.work/``), so a killed run resumes at
the stage in flight: ``generations.json`` (the guarded model's unguarded replies to every attack and
benign request, timed), ``trained/`` (the classifiers' heads), ``scores.json`` (every classifier's scores
of every reply, timed). The run folder holds ``metrics.json`` (estimates in the shared shape),
``records.jsonl`` (one line per exchange and defence), ``policy/`` (load it with ``GuardPolicy.load`` or
use it as ``guard:<run folder>``) and the figures.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from typing import Any

from overseer._storage import WorkDir
from overseer.guard.config import GuardConfig
from overseer.results import Estimate, RunResult, start_run, summary_formatter

CLASSIFIERS = ("input", "output", "exchange", "probe")


@summary_formatter("guard")
def summary_line(result: RunResult) -> str:
    """One line: attack success unguarded and under the cascade, its false refusals and time overhead."""
    m = result.metrics
    none = Estimate.from_dict(m.get("asr", {}).get("none", {}).get("all"))
    cascade = Estimate.from_dict(m.get("asr", {}).get("cascade", {}).get("all"))
    frr = Estimate.from_dict(m.get("frr", {}).get("cascade"))
    share = m.get("overhead", {}).get("cascade", {}).get("time_share")
    cost = "n/a" if share is None else f"{100 * share:.1f}%"
    return (f"guard {result.summary.get('constitution')}: attack success unguarded {none:.2f}, cascade {cascade:.2f}; "
            f"cascade false refusals {frr:.2f}; cascade share of guarded time {cost}")


_STARTED = time.perf_counter()


def _say(cfg: GuardConfig, text: str) -> None:
    """One progress line on stderr with the seconds since the process started (``--no-progress`` silences it)."""
    if cfg.progress:
        print(f"[guard {time.perf_counter() - _STARTED:6.0f} s] {text}", file=sys.stderr, flush=True)


def _exchange_json(ex: Any) -> dict[str, Any]:
    return {"turns": [dict(m) for m in ex.turns], "response": ex.response, "system": ex.system}


def build_prompts(cfg: GuardConfig, constitution: Any, transformer: Any) -> list[dict[str, Any]]:
    """Every request the guarded model answers: attacks x transformations, adaptive compositions, benign traffic."""
    from overseer.guard import data

    rows: list[dict[str, Any]] = []
    attacks = data.attack_requests(constitution, cfg.attack_requests, cfg.seed)
    for role, names in (("attack", cfg.transforms), ("adaptive", cfg.adaptive)):
        for t in names:
            turned = transformer.apply_many(t, [a.turns for a in attacks], salt=len(rows))
            rows += [{"role": role, "transform": t, "base": b, "category": a.category, "turns": list(turns)}
                     for b, (a, turns) in enumerate(zip(attacks, turned, strict=True))]
    for role, n in (("calibration", cfg.benign_calibration), ("benign", cfg.benign_eval)):
        part = "calibration" if role == "calibration" else "eval"
        rows += [{"role": role, "transform": "plain", "base": -1, "category": b.category, "turns": list(b.turns)}
                 for b in data.benign_requests(constitution, n, part, cfg.seed)]
    return rows


def generate_all(cfg: GuardConfig, constitution: Any, backend: Any, policy: Any,
                 prompts: list[dict[str, Any]]) -> dict[str, Any]:
    """The guarded model's unguarded reply to each prompt, with the generation's wall time and token counts.

    The probe reads its states off this same generation pass (its scores and head time are kept here).
    """
    from overseer.guard.classifiers import Exchange
    from overseer.guard.guarding import generate_watched
    from overseer.models import GenerateConfig, encode_prompt

    chats = [Exchange(tuple(p["turns"]), "", constitution.system_prompt).chat() for p in prompts]
    config = GenerateConfig(max_new_tokens=cfg.max_new_tokens, temperature=0.0, seed=cfg.seed)
    seconds: dict[str, float] = {}
    gens, probe = [], []
    step = 4 * cfg.batch_size  # a progress line every few batches of a stage that takes minutes
    for start in range(0, len(chats), step):
        part, read = generate_watched(policy, backend, chats[start:start + step], config, seconds)
        gens += part
        probe = None if read is None else [*(probe or []), *read]
        _say(cfg, f"generated {min(start + step, len(chats))}/{len(chats)} replies "
                  f"({seconds['generate']:.0f} s)")
    tok = backend.loaded.tokenizer
    prompt_tokens = sum(len(encode_prompt(tok, backend.render(c))) for c in chats)
    response_tokens = sum(len(g.token_ids) for g in gens)
    for p, g in zip(prompts, gens, strict=True):
        p["response"] = g.text if g.ok else ""
        p["error"] = g.error
    out = {"prompts": prompts, "seconds": seconds["generate"], "prompt_tokens": prompt_tokens,
           "response_tokens": response_tokens, "probe": None}
    if probe is not None:
        out["probe"] = {"seconds": seconds["probe"], "scores": [s.scores.tolist() for s in probe],
                        "offsets": [[list(o) for o in s.offsets] for s in probe]}
    return out


def train_policy(cfg: GuardConfig, constitution: Any, transformer: Any, generator: Any, loaded: Any) -> Any:
    """Train the four classifiers on synthetic exchanges (thresholds come later, from benign traffic)."""
    from overseer.guard import data
    from overseer.guard.classifiers import Cascade, Classifier, Exchange, GuardPolicy

    examples = data.training_examples(constitution, cfg.train_per_category, cfg.seed, cfg.transform_share, transformer)
    if generator is not None:
        written = data.generated_requests(constitution, generator, cfg.generator_requests, cfg.seed)
        examples += data.with_responses(constitution, written, cfg.seed)
    items = [Exchange(e.turns, e.response, constitution.system_prompt) for e in examples]
    layer = (cfg.classifier_layer,)
    policy = GuardPolicy(
        guarded_model=cfg.guarded_model, system_prompt=constitution.system_prompt, refusal=constitution.refusals[0],
        classifiers={
            "input": Classifier("input", cfg.classifier_model, layer),
            "output": Classifier("output", cfg.classifier_model, layer, smoothing=cfg.probe_smoothing),
            "exchange": Classifier("exchange", cfg.classifier_model, layer),
            "probe": Classifier("probe", cfg.guarded_model, tuple(cfg.probe_layers), smoothing=cfg.probe_smoothing),
        },
        ensemble=tuple(cfg.ensemble), cascade=Cascade(cfg.cascade_stages[0], cfg.cascade_stages[1],
                                                      cfg.escalation_rate),
        defence=cfg.policy_defence, constitution=cfg.constitution,
        extra={"training_examples": len(examples),
               "generated_requests": sum(e.source == "generator" for e in examples)},
    )
    policy.share_readers({cfg.guarded_model: loaded}, cfg.device)
    for name, clf in policy.classifiers.items():
        _say(cfg, f"training the {name} classifier on {len(items)} exchanges")
        if name == "input":
            clf.fit(items, [e.request_label for e in examples], c=cfg.head_c, seed=cfg.seed)
        elif name == "exchange":
            clf.fit(items, [e.response_label for e in examples], c=cfg.head_c, seed=cfg.seed)
        else:
            clf.fit(items, [], spans=[e.spans for e in examples], c=cfg.head_c, seed=cfg.seed)
    return policy


def _scores_json(scores: list[Any]) -> list[dict[str, Any]]:
    return [{"sequence": s.sequence,
             "tokens": {k: {"scores": v.scores.tolist(), "offsets": [list(o) for o in v.offsets]}
                        for k, v in s.tokens.items()}} for s in scores]


def _scores_from(rows: list[dict[str, Any]]) -> list[Any]:
    import numpy as np

    from overseer.guard.classifiers import TokenScores
    from overseer.guard.guarding import Scores

    return [Scores(dict(r["sequence"]), {k: TokenScores(np.array(v["scores"], dtype=np.float64),
                                                         [tuple(o) for o in v["offsets"]])
                                         for k, v in r["tokens"].items()}) for r in rows]


def score_all(cfg: GuardConfig, policy: Any, constitution: Any, gen: dict[str, Any]) -> dict[str, Any]:
    """Every classifier's scores of every reply, and per classifier its seconds, tokens read and FLOPs per exchange.

    A probe that read its states off the generation pass costs only its head: ``2 x head size`` FLOPs per
    response token, and the head's measured time.
    """
    import numpy as np

    from overseer.guard.classifiers import Exchange, TokenScores
    from overseer.guard.guarding import Scores, score_exchanges

    prompts = gen["prompts"]
    items = [Exchange(tuple(p["turns"]), p["response"], constitution.system_prompt) for p in prompts]
    seconds: dict[str, float] = {}
    costs: dict[str, dict[str, float]] = {}
    merged = None
    for name in CLASSIFIERS:
        if name == "probe" and gen.get("probe"):
            head = policy.classifiers["probe"].head.coef.shape[0]
            probe = [TokenScores(np.array(s, dtype=np.float64), [tuple(o) for o in offs])
                     for s, offs in zip(gen["probe"]["scores"], gen["probe"]["offsets"], strict=True)]
            tokens = gen["response_tokens"] / len(items)
            costs[name] = {"seconds": gen["probe"]["seconds"] / len(items), "tokens": tokens,
                           "flops": 2.0 * head * tokens, "params": head, "read_off_generation": True}
            scores = [Scores(tokens={"probe": p}) for p in probe]
            merged = scores if merged is None else merged
            if merged is not scores:
                for m, s in zip(merged, scores, strict=True):
                    m.tokens.update(s.tokens)
            continue
        _say(cfg, f"scoring {len(items)} replies with the {name} classifier")
        clf = policy.classifiers[name]
        before = clf.reader.tokens_read
        scores = score_exchanges(policy, [name], items, seconds)
        tokens = clf.reader.tokens_read - before
        params = clf.reader.params(clf.layers)
        costs[name] = {"seconds": seconds[name] / len(items), "tokens": tokens / len(items),
                       "flops": 2.0 * params * tokens / len(items), "params": params}
        if merged is None:
            merged = scores
        else:
            for m, s in zip(merged, scores, strict=True):
                m.sequence.update(s.sequence)
                m.tokens.update(s.tokens)
    return {"scores": _scores_json(merged or []), "costs": costs}


def hh_rlhf_requests(n: int) -> list[str]:
    """The first human turn of the first ``n`` dialogues of hh-rlhf's harmless-base test set (shared data folder)."""
    import gzip

    from overseer.data import shared_data_dir
    from overseer.errors import OverseerError

    path = shared_data_dir() / "hh_rlhf" / "harmless-base-test.jsonl.gz"
    if not path.is_file():
        raise OverseerError(f"hh_rlhf needs {path} (see the shared data folder's README); pass --hh-rlhf 0 to skip")
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            text = json.loads(line)["chosen"]
            first = text.split("\n\nHuman:", 1)[-1].split("\n\nAssistant:", 1)[0].strip()
            if first:
                out.append(first)
            if len(out) >= n:
                break
    return out


def run(cfg: GuardConfig | None = None, force: bool = False) -> RunResult:
    """Run the guard experiment of ``cfg`` (default: the offline proxy tier); return the run's result.

    A finished run of the same config is reused; an unfinished one resumes from its last finished stage.
    """
    from overseer.guard.checks import check_run

    cfg = cfg or GuardConfig()
    constitution = check_run(cfg)
    from overseer.models import check_model, get_backend

    check_model(cfg.guarded_model, cfg.device)
    check_model(cfg.classifier_model, cfg.device)
    writer = start_run("guard", cfg.identity(), cfg.runs_dir, force=force, resolved=cfg.to_dict())
    if writer.existing:
        return writer.existing
    started = time.perf_counter()
    work = WorkDir(writer.path.parent, writer.path.name)
    if force:
        shutil.rmtree(work.path, ignore_errors=True)
    timings: dict[str, float] = {}
    with writer, work:
        metrics, records, extra = _run_in(cfg, constitution, work, writer, timings, get_backend)
        timings["compute_s"] = round(time.perf_counter() - started, 1)
        writer.finish(metrics, timings=timings, summary=extra.pop("summary"), **extra)
        with open(writer.file("records.jsonl"), "w", encoding="utf-8") as f:
            for row in records:
                f.write(json.dumps(row) + "\n")
    shutil.rmtree(work.path, ignore_errors=True)
    return writer.result


def _run_in(cfg: GuardConfig, constitution: Any, work: WorkDir, writer: Any, timings: dict[str, float],
            get_backend: Any) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    from overseer.guard import evaluate, plots
    from overseer.guard.classifiers import GuardPolicy
    from overseer.guard.transforms import Transformer

    backend = get_backend(cfg.guarded_model, device=cfg.device, batch_size=cfg.batch_size)
    generator = get_backend(cfg.generator) if cfg.generator else None
    transformer = Transformer(generator, seed=cfg.seed)

    t0 = time.perf_counter()
    prompts = work.json_unit("prompts.json", lambda: build_prompts(cfg, constitution, transformer))
    timings["data_s"] = round(time.perf_counter() - t0, 1)
    trained = work.path / "trained"
    t0 = time.perf_counter()
    if (trained / "policy.json").is_file():
        policy = GuardPolicy.load(trained)
        policy.share_readers({cfg.guarded_model: backend.loaded}, cfg.device)
    else:
        policy = train_policy(cfg, constitution, transformer, generator, backend.loaded)
        policy.save(trained)
    timings["train_s"] = round(time.perf_counter() - t0, 1)

    _say(cfg, f"generating {len(prompts)} unguarded replies of {cfg.guarded_model}")
    t0 = time.perf_counter()
    gen = work.json_unit("generations.json", lambda: generate_all(cfg, constitution, backend, policy, prompts))
    timings["generate_s"] = round(time.perf_counter() - t0, 1)
    prompts = gen["prompts"]

    t0 = time.perf_counter()
    scored = work.json_unit("scores.json", lambda: score_all(cfg, policy, constitution, gen))
    timings["score_s"] = round(time.perf_counter() - t0, 1)
    scores = _scores_from(scored["scores"])
    costs = scored["costs"]

    items = [evaluate.Item(p["role"], p["transform"], p["base"], p["category"], p["response"],
                           bool(constitution.leaks(p["response"]))) for p in prompts]
    calibration = [scores[i] for i in evaluate.clean_benign(items, "calibration")]
    if not calibration:
        from overseer.errors import OverseerError

        raise OverseerError("every calibration reply of the guarded model leaks a secret; no benign traffic is left "
                            "to set thresholds on (raise --benign-calibration)")
    evaluate.calibrate_policy(policy, calibration, cfg.target_frr, cfg.escalation_rate)
    policy_path = policy.save(writer.file("policy"))

    n = len(prompts)
    generation = {"seconds": gen["seconds"] / n,
                  "flops": 2.0 * backend_params(backend) * (gen["prompt_tokens"] + gen["response_tokens"]) / n}
    metrics = evaluate.attack_metrics(policy, constitution, items, scores, cfg.transforms)
    benign = evaluate.clean_benign(items)
    attacks = [i for i, it in enumerate(items) if it.role == "attack"]
    cascade_outs = evaluate.outcomes(policy, "cascade", items, scores)
    escalated = sum(cascade_outs[i].escalated for i in benign) / max(1, len(benign))
    # the cost is that of benign traffic (what a deployment mostly sees); attacks are escalated more often
    metrics["overhead"] = {d: evaluate.overhead(policy, d, costs, generation, escalated if d == "cascade" else None)
                           for d in evaluate.EVAL_DEFENCES if d != "none"}
    metrics["cascade_escalated_share"] = escalated
    metrics["cascade_escalated_share_attacks"] = (sum(cascade_outs[i].escalated for i in attacks)
                                                  / max(1, len(attacks)))
    metrics["cascade_ends"] = evaluate.check_cascade_ends(policy, items, scores)
    metrics["thresholds"] = {n_: c.to_json()["threshold"] for n_, c in policy.classifiers.items()}
    sweep = evaluate.cascade_sweep(policy, constitution, items, scores, calibration, cfg.sweep_rates, costs, generation)
    curve = evaluate.refusal_curve(policy, items, scores, constitution, ["input", "output", "exchange", "probe"])
    if cfg.hh_rlhf:
        metrics["hh_rlhf_flagged"] = _hh_rlhf(cfg, policy)
    if cfg.attacker_rounds and generator is not None:
        from overseer.guard import data
        from overseer.guard.attacker import attacker_rates
        from overseer.models import GenerateConfig

        _say(cfg, f"attacker model: up to {cfg.attacker_rounds} rounds per stopped request and defence")
        requests = [a.turns[-1]["content"] for a in data.attack_requests(constitution, cfg.attack_requests, cfg.seed)]
        config = GenerateConfig(max_new_tokens=cfg.max_new_tokens, temperature=0.0, seed=cfg.seed)
        t0 = time.perf_counter()
        metrics["attacker_asr"] = work.json_unit("attacker.json", lambda: attacker_rates(
            policy, constitution, backend, generator, config, items, scores, requests, cfg.attacker_rounds,
            [d for d in evaluate.EVAL_DEFENCES if d != "none"]))
        timings["attacker_s"] = round(time.perf_counter() - t0, 1)

    records = []
    for d in evaluate.EVAL_DEFENCES:
        for p, o in zip(prompts, evaluate.outcomes(policy, d, items, scores), strict=True):
            records.append({"defence": d, "role": p["role"], "transform": p["transform"], "base": p["base"],
                            "category": p["category"], "request": p["turns"][-1]["content"], "response": p["response"],
                            "shown": o.shown, "blocked": o.blocked, "halted_at": o.halted_at, "stage": o.stage,
                            "leaked": constitution.leaks(o.shown)})
    figures = writer.file("figures")
    figures.mkdir(parents=True, exist_ok=True)
    plots.write_figures(figures, metrics, sweep, curve, cfg)
    summary = {"constitution": constitution.name, "guarded_model": cfg.guarded_model,
               "asr_none": metrics["asr"]["none"]["all"]["value"],
               "asr_cascade": metrics["asr"]["cascade"]["all"]["value"],
               "frr_cascade": metrics["frr"]["cascade"]["value"],
               "cascade_time_share": metrics["overhead"]["cascade"]["time_share"]}
    extra = {"summary": summary, "cascade_sweep": sweep, "refusal_curve": curve, "costs": costs,
             "generation": {**generation, "prompts": n, "wall_s": gen["seconds"]},
             "policy": str(policy_path.name), "n_items": {r: sum(it.role == r for it in items)
                                                          for r in ("attack", "adaptive", "calibration", "benign")},
             "n_clean": {"calibration": len(calibration), "benign": len(evaluate.clean_benign(items))}}
    return metrics, records, extra


def backend_params(backend: Any) -> int:
    """Parameters of the guarded model (embeddings included: the output layer runs per token)."""
    return sum(p.numel() for p in backend.loaded.model.parameters())


def _hh_rlhf(cfg: GuardConfig, policy: Any) -> dict[str, Any]:
    """Share of real harmful-request first turns each input-side classifier flags (transfer from the proxy)."""
    from overseer.guard.classifiers import Exchange
    from overseer.guard.evaluate import rate

    texts = hh_rlhf_requests(cfg.hh_rlhf)
    items = [Exchange(({"role": "user", "content": t},), "", policy.system_prompt) for t in texts]
    clf = policy.classifiers["input"]
    flagged = int((clf.sequence_scores(items) >= clf.threshold).sum())
    return {"input": rate(flagged, len(items))}
