"""Feature-extraction throughput against a bare forward loop over the same model and texts.

Usage: python benchmarks/bench_features.py [--model smollm2-135m] [--n 2000] [--batch-size 32]

Both loops see the same texts in the same batch size. The bare loop tokenizes each batch in the
given order and calls the model's backbone (no hidden-state pooling, no caching); extraction
sorts by length, pools the last layer and copies the result to numpy. Throughput counts real
(non-padding) tokens per second. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from overseer.data import load_dataset
from overseer.models import extract_features, load_model


def bare_forward(lm, texts: list[str], batch_size: int, max_length: int) -> float:
    """Seconds for a plain batched forward pass of the backbone over ``texts``."""
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            batch = lm.tokenizer(texts[i : i + batch_size], padding=True, truncation=True,
                                 max_length=max_length, return_tensors="pt").to(lm.device)
            lm.backbone(**batch)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--dataset", default="geo_facts")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    texts = [ex.text for ex in load_dataset(args.dataset).examples[: args.n]]
    lm = load_model(args.model)
    tokens = sum(len(ids) for ids in lm.tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"])
    extract_features(lm, texts[: args.batch_size], batch_size=args.batch_size)  # warm-up
    bare, ours = [], []
    for _ in range(args.repeats):  # interleaved, best of N, so drift hits both alike
        bare.append(bare_forward(lm, texts, args.batch_size, args.max_length))
        start = time.perf_counter()
        extract_features(lm, texts, layers=[-1], pooling="last", batch_size=args.batch_size, max_length=args.max_length)
        ours.append(time.perf_counter() - start)
    result = {
        "benchmark": "feature_extraction",
        "model": args.model,
        "texts": len(texts),
        "tokens": tokens,
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "bare_forward_tokens_per_s": round(tokens / min(bare), 1),
        "extract_features_tokens_per_s": round(tokens / min(ours), 1),
        "ratio": round(min(bare) / min(ours), 3),
    }
    print(f"bare forward: {result['bare_forward_tokens_per_s']} tok/s; "
          f"extract_features: {result['extract_features_tokens_per_s']} tok/s; ratio {result['ratio']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
