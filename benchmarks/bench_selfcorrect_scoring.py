"""Items per second for Q-condition BBQ scoring on SmolLM2-135M: batched scoring vs a plain loop.

    python benchmarks/bench_selfcorrect_scoring.py [--items 48] [--batch-size 8] [--threads 2]

* ``plain loop``: one item at a time, one forward pass per answer option over prompt + option;
* ``per-item batch``: one item at a time, its three prompt + option sequences in one padded batch;
* ``batched``: ``overseer.models.score_options`` - items batched, each prompt run once and its
  key/value cache shared by the item's options.

All three score the same rendered prompts (the model's chat template) and must agree; the last line
printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from overseer.models import HFBackend, load_model, score_options
from overseer.selfcorrect import SelfCorrectConfig, bbq
from overseer.selfcorrect.prompts import CONDITION_LIST


def plain_loop(lm, prompts: list[str], options: list[list[str]]) -> list[list[float]]:
    """The naive reference: a separate batch-1 forward pass for every prompt + option."""
    tok, model = lm.tokenizer, lm.model
    out = []
    with torch.inference_mode():
        for prompt, opts in zip(prompts, options, strict=True):
            p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
            scores = []
            for option in opts:
                o_ids = tok(option, add_special_tokens=False)["input_ids"]
                logits = model(torch.tensor([p_ids + o_ids], device=lm.device)).logits[0].float()
                logp = torch.log_softmax(logits[len(p_ids) - 1 : -1], dim=-1)
                scores.append(float(logp.gather(-1, torch.tensor(o_ids, device=lm.device)[:, None]).sum()))
            out.append(scores)
    return out


def timed(fn, *args) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--items", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = SelfCorrectConfig(models=(args.model,), suites=("bbq",), conditions=("q",))
    items = bbq.sample_bbq(bbq.load_bbq(cfg.data_path / "bbq"), per_cell=20, seed=0)
    items = items[:: max(1, len(items) // args.items)][: args.items]
    queries = bbq.build_queries(items, CONDITION_LIST[0], "text", debias_order=False)
    lm = load_model(args.model, device="cpu")
    backend = HFBackend(lm, batch_size=args.batch_size)
    prompts = [backend.render(q.chat) for q in queries]
    options = [list(q.options) for q in queries]
    n_tokens = sum(len(lm.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts)

    score_options(lm, prompts[:2], options[:2], batch_size=2)  # warm-up
    plain_loop(lm, prompts[:1], options[:1])

    t_plain, ref = timed(plain_loop, lm, prompts, options)
    t_item, per_item = timed(score_options, lm, prompts, options, 1, False)
    t_batched, batched = timed(score_options, lm, prompts, options, args.batch_size, True)
    diff = max(
        abs(a - b)
        for ref_item, *others in zip(ref, per_item, batched, strict=True)
        for other in others
        for a, b in zip(ref_item, other.logprobs, strict=True)
    )

    n = len(prompts)
    result = {
        "benchmark": "selfcorrect_bbq_q_scoring",
        "model": args.model,
        "items": n,
        "mean_prompt_tokens": round(n_tokens / n, 1),
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "plain_loop_items_per_s": round(n / t_plain, 3),
        "per_item_batch_items_per_s": round(n / t_item, 3),
        "batched_items_per_s": round(n / t_batched, 3),
        "speedup_vs_plain_loop": round(t_plain / t_batched, 2),
        "max_abs_logprob_diff": round(diff, 5),
    }
    print(f"plain loop      {result['plain_loop_items_per_s']:8.2f} items/s")
    print(f"per-item batch  {result['per_item_batch_items_per_s']:8.2f} items/s")
    print(f"batched         {result['batched_items_per_s']:8.2f} items/s  ({result['speedup_vs_plain_loop']}x)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
