"""Fine-tuning throughput of the finetune learner against a plain PyTorch loop, and peak memory.

Usage: python benchmarks/bench_finetune.py [--model smollm2-135m] [--n 64] [--batch-size 8]
       [--epochs 1] [--repeats 2] [--bf16 auto|true|false] [--skip-memory]

Throughput: both loops train the same model (same weights, a 2-class head on the standardised last real token)
on the same texts, in the same batch size, for the same number of AdamW steps, with soft-label
cross-entropy. The learner's time is the Trainer's ``train_runtime`` (data loading, collation,
scheduler and callbacks included; model loading excluded); the plain loop pre-tokenizes, pads
each batch and steps AdamW. Runs alternate, ``--repeats`` times each, and the fastest of each is
kept, which damps noise from other processes. Tokens/s counts real (non-padding) tokens.

Memory: full and LoRA fine-tuning each run in a fresh subprocess (``--memory-n`` examples, so
two steps at batch 8: AdamW's state exists from the first step). The figure covers the
``Trainer.train`` window only, against its start (model loaded): on CUDA the peak allocated memory,
on CPU the sampled peak resident set size. ``--model smollm2-135m-l4`` (a 4-layer rung) is
quicker. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch

from overseer.data import load_dataset
from overseer.models import ActivationCache, load_model, pool
from overseer.w2s.finetune import FinetuneConfig, FinetuneLearner
from overseer.w2s.splits import UnlabeledSplit

LR = 1e-5


def data(n: int) -> tuple[UnlabeledSplit, np.ndarray]:
    ds = load_dataset("geo_facts", limit=max(n, 200))
    examples = ds.examples[:n]
    split = UnlabeledSplit("bench", tuple(e.id for e in examples), tuple(e.text for e in examples), None)
    return split, np.array([e.label for e in examples], dtype=np.float32)


def ours(model: str, split: UnlabeledSplit, y: np.ndarray, cfg: FinetuneConfig, device: str) -> tuple[float, int]:
    """Seconds of the learner's ``trainer.train()`` and its number of optimizer steps."""
    learner = FinetuneLearner(cache=ActivationCache(device=device), max_length=cfg.max_length or 128, config=cfg)
    fitted = learner.fit(model, split, y)
    end = fitted.log_history[-1]
    return float(end["train_runtime"]), int(end["step"])


def plain(model: str, split: UnlabeledSplit, y: np.ndarray, cfg: FinetuneConfig, device: str, bf16: bool) -> float:
    """Seconds of a hand-written loop: same model, head, batches, steps and optimizer."""
    lm = load_model(model, device=device, dtype="float32")
    body = lm.backbone
    torch.manual_seed(0)
    head = torch.nn.Linear(lm.model.config.hidden_size, 2).to(lm.device)
    params = [*body.parameters(), *head.parameters()]
    # The Trainer's default optimizer is torch's fused AdamW (optim=adamw_torch_fused); the same here, so the
    # comparison measures the training loop, not two AdamW kernels (foreach AdamW is ~1 s/step slower on CPU).
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.0, fused=True)
    tok = lm.tokenizer
    tok.truncation_side = "left"
    ids = tok(list(split.texts), truncation=True, max_length=cfg.max_length or 128)["input_ids"]
    targets = torch.from_numpy(np.stack([1 - y, y], axis=-1))
    gen = torch.Generator().manual_seed(0)
    steps_per_epoch = math.ceil(len(ids) / cfg.batch_size)
    # The learner standardises the head's input with the untrained model's statistics before training;
    # so does this loop, also before its clock starts (setup, like tokenization).
    with torch.no_grad():
        feats = []
        for s in range(0, min(len(ids), 256), cfg.batch_size):
            batch = tok.pad({"input_ids": ids[s : s + cfg.batch_size]}, return_tensors="pt").to(lm.device)
            hidden = body(**batch, use_cache=False).last_hidden_state
            feats.append(pool(hidden, batch["attention_mask"], "last").float())
        feats = torch.cat(feats)
        mean, scale = feats.mean(0), feats.std(0, unbiased=False) + 1e-3
    body.train()
    start = time.perf_counter()
    for _ in range(int(cfg.epochs)):
        order = torch.randperm(len(ids), generator=gen).tolist()
        for s in range(steps_per_epoch):
            idx = order[s * cfg.batch_size : (s + 1) * cfg.batch_size]
            batch = tok.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt").to(lm.device)
            with torch.autocast(lm.device.type, torch.bfloat16, enabled=bf16):
                hidden = body(**batch, use_cache=False).last_hidden_state  # (b, s, d)
                logits = head((pool(hidden, batch["attention_mask"], "last") - mean) / scale)  # (b, 2)
            loss = -(targets[idx].to(lm.device) * torch.log_softmax(logits.float(), -1)).sum(-1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss.item()  # the learner reads each loss too (NaN check)
    if lm.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_memory_child(what: str, model: str, n: int, batch_size: int, device: str, bf16: str) -> None:
    """In a fresh process: fine-tune fully or with LoRA; print the peak memory of ``Trainer.train`` as JSON.

    Loading a model briefly needs more memory than holding it, so the process-wide peak would
    measure loading; this measures the training window only: on CUDA the peak allocated memory,
    on CPU the resident set size sampled every 5 ms, each against its value when training starts.
    """
    import threading

    from transformers import Trainer

    split, y = data(n)
    cfg = FinetuneConfig(lr=LR, epochs=1, batch_size=batch_size, lora=what == "lora", bf16=bf16, max_length=128)
    result: dict[str, float] = {}
    original = Trainer.train

    def measured_train(self: Trainer, *args: object, **kwargs: object) -> object:
        cuda = torch.cuda.is_available() and self.args.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            result["cuda_at_start_mib"] = round(torch.cuda.memory_allocated() / 2**20, 1)
        start = _rss_mib()
        peak = [start]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.005):
                peak[0] = max(peak[0], _rss_mib())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            return original(self, *args, **kwargs)
        finally:
            done.set()
            sampler.join()
            peak[0] = max(peak[0], _rss_mib())
            result.update({"rss_at_start_mib": round(start, 1), "rss_peak_mib": round(peak[0], 1),
                           "rss_training_mib": round(peak[0] - start, 1)})
            if cuda:
                result["cuda_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
                result["cuda_training_mib"] = round(result["cuda_peak_mib"] - result["cuda_at_start_mib"], 1)
            result["trainable_params"] = sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    Trainer.train = measured_train  # type: ignore[method-assign]
    FinetuneLearner(cache=ActivationCache(device=device), config=cfg).fit(model, split, y)
    print(json.dumps(result))


def peak_memory(what: str, args: argparse.Namespace) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", what, "--model", args.model, "--n", str(args.memory_n),
           "--batch-size", str(args.batch_size), "--device", args.device, "--bf16", args.bf16]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
    if proc.returncode != 0:
        sys.exit(f"memory run {what!r} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def throughput(args: argparse.Namespace, bf16_flag: bool | str) -> dict[str, object]:
    """Alternate timed runs of the learner and the plain loop; keep the fastest of each."""
    split, y = data(args.n)
    cfg = FinetuneConfig(lr=LR, epochs=args.epochs, batch_size=args.batch_size, bf16=bf16_flag, max_length=128,
                         lr_scheduler="constant")
    bf16 = cfg.use_bf16(torch.device(args.device).type)
    ours(args.model, split, y, cfg, args.device)  # warm-up: GGUF conversion cache, lazy imports, kernels
    ours_s, plain_s, steps = [], [], 0
    for _ in range(args.repeats):
        seconds, steps = ours(args.model, split, y, cfg, args.device)
        ours_s.append(seconds)
        plain_s.append(plain(args.model, split, y, cfg, args.device, bf16))
    examples = args.n * args.epochs
    tok = load_model(args.model, device="cpu").tokenizer
    tokens = args.epochs * sum(len(t) for t in tok(list(split.texts), truncation=True, max_length=128)["input_ids"])
    best_ours, best_plain = min(ours_s), min(plain_s)
    return {
        "bf16": bf16,
        "n": args.n,
        "steps": steps,
        "learner": {"seconds": round(best_ours, 3), "examples_per_s": round(examples / best_ours, 2),
                    "tokens_per_s": round(tokens / best_ours, 1), "all_seconds": [round(s, 3) for s in ours_s]},
        "plain_loop": {"seconds": round(best_plain, 3), "examples_per_s": round(examples / best_plain, 2),
                       "tokens_per_s": round(tokens / best_plain, 1), "all_seconds": [round(s, 3) for s in plain_s]},
        "throughput_ratio": round(best_plain / best_ours, 3),
        "target_ratio": 0.9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m", help="model or ladder rung (smollm2-135m-l4 is quicker)")
    parser.add_argument("--n", type=int, default=64, help="training examples")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each loop; the fastest counts")
    parser.add_argument("--bf16", default="auto", choices=["auto", "true", "false"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--memory-n", type=int, default=16, help="examples of each memory run (2 steps at batch 8)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    bf16_flag: bool | str = {"auto": "auto", "true": True, "false": False}[args.bf16]
    if args.child:
        peak_memory_child(args.child, args.model, args.n, args.batch_size, args.device, bf16_flag)
        return

    result: dict[str, object] = {
        "benchmark": "finetune",
        "model": args.model,
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        "batch_size": args.batch_size,
    }
    if not args.skip_throughput:
        result.update(throughput(args, bf16_flag))
    if not args.skip_memory:
        result["memory"] = {what: peak_memory(what, args) for what in ("full", "lora")}
        result["memory"]["n"] = args.memory_n
    result["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
