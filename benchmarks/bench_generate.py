"""Sampled-generation throughput: ``get_backend(...).generate`` against a bare ``model.generate`` loop.

    python benchmarks/bench_generate.py [--model smollm2-135m] [--prompts 16] [--batch-size 8]
        [--max-new-tokens 64] [--temperature 0.8] [--top-p 0.95] [--threads 2] [--repeats 2]

Both sides complete the same chat-formatted prompts (real questions from the GSM8K test set in
``../shared/data/gsm8k`` when present, else built-in arithmetic questions) with the same batch
size, sampling settings and token cap, on the same loaded model:

* ``bare``: the prompts in their given order, in batches, tokenized with left padding and passed
  to ``model.generate`` (no log-probabilities, no post-processing);
* ``overseer``: ``HFBackend.generate`` with a :class:`GenerateConfig` (length-sorted batches,
  per-token log-probabilities, end-of-turn trimming, decoding, seeded RNG).

Throughput is new (non-padding) tokens per second, best of ``--repeats`` interleaved runs. The
last line printed is one JSON object; the target is ``ratio >= 0.9``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from overseer.models import Chat, GenerateConfig, get_backend

GSM8K_TEST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gsm8k" / "test.jsonl"


def questions(n: int) -> list[str]:
    """``n`` word problems: GSM8K test questions if the shared data is there, else made-up sums."""
    if GSM8K_TEST.is_file():
        with GSM8K_TEST.open() as fh:
            rows = [json.loads(line)["question"] for _, line in zip(range(n), fh, strict=False)]
        if len(rows) == n:
            return rows
    return [f"Tom has {3 + i} apples and buys {2 * i + 1} more. How many apples does he have?" for i in range(n)]


def bare_loop(lm, prompts: list[str], config: GenerateConfig, batch_size: int, stop_ids: list[int]) -> int:
    """Plain ``model.generate`` over batches in the given order; returns new non-padding tokens."""
    tok, model = lm.tokenizer, lm.model
    tok.padding_side = "left"
    new_tokens = 0
    with torch.inference_mode():
        torch.manual_seed(config.seed or 0)
        for start in range(0, len(prompts), batch_size):
            enc = tok(prompts[start : start + batch_size], return_tensors="pt", padding=True,
                      add_special_tokens=False)
            out = model.generate(**enc, max_new_tokens=config.max_new_tokens, do_sample=True,
                                 temperature=config.temperature, top_p=config.top_p, top_k=0,
                                 num_return_sequences=config.n, pad_token_id=tok.pad_token_id, eos_token_id=stop_ids)
            generated = out[:, enc["input_ids"].shape[1] :]
            for row in generated.tolist():
                ends = [t for t, tok_id in enumerate(row) if tok_id in stop_ids]
                new_tokens += ends[0] if ends else len(row)
    return new_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--n", type=int, default=1, help="samples per prompt")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    backend = get_backend(args.model, device="cpu", batch_size=args.batch_size)
    lm = backend.loaded
    from overseer.models._lm import _stop_ids

    stop_ids = _stop_ids(lm.tokenizer)
    chats = [Chat.user(q) for q in questions(args.prompts)]
    rendered = [backend.render(c) for c in chats]
    config = GenerateConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
                            n=args.n, seed=0)
    backend.generate(chats[:2], GenerateConfig(max_new_tokens=4, temperature=0.8))  # warm-up
    bare_loop(lm, rendered[:2], GenerateConfig(max_new_tokens=4, temperature=0.8), 2, stop_ids)

    best = {"bare": 0.0, "overseer": 0.0}
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits both sides alike
        start = time.perf_counter()
        tokens = bare_loop(lm, rendered, config, args.batch_size, stop_ids)
        best["bare"] = max(best["bare"], tokens / (time.perf_counter() - start))
        print(f"bare loop: {tokens} new tokens, {best['bare']:.1f} tokens/s (best so far)")
        start = time.perf_counter()
        samples = backend.generate(chats, config)
        tokens = sum(len(g.token_ids) for per_prompt in samples for g in per_prompt)
        best["overseer"] = max(best["overseer"], tokens / (time.perf_counter() - start))
        print(f"overseer:  {tokens} new tokens, {best['overseer']:.1f} tokens/s (best so far)")
    ratio = best["overseer"] / best["bare"]
    print(json.dumps({"benchmark": "generate", "model": args.model, "prompts": args.prompts,
                      "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
                      "temperature": args.temperature, "top_p": args.top_p, "n": args.n, "threads": args.threads,
                      "bare_tokens_per_s": round(best["bare"], 1), "overseer_tokens_per_s": round(best["overseer"], 1),
                      "ratio": round(ratio, 3), "target": 0.9}))


if __name__ == "__main__":
    main()
