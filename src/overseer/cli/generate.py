"""``overseer generate``: complete prompts with any model spec, greedy or sampled."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``overseer generate``."""
    p = sub.add_parser(
        "generate",
        help="complete prompts with any model (local, served or mock)",
        description="Python equivalent: get_backend(MODEL).generate([Chat.user(PROMPT)], GenerateConfig(...)).",
    )
    p.add_argument("prompts", nargs="+", metavar="PROMPT", help="prompt text (a user message unless --raw)")
    p.add_argument("--model", default="smollm2-135m",
                   help="model spec: short name, rung, hf/ID[@rev], directory, .gguf, openai/MODEL@URL, mock "
                        "(default smollm2-135m)")
    p.add_argument("--n", type=int, default=1, help="samples per prompt (default 1)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default); else sampling temperature")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default 1.0)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--max-new-tokens", type=int, default=64, help="most tokens per sample (default 64)")
    p.add_argument("--stop", action="append", default=[], metavar="TEXT", help="stop string (repeatable)")
    p.add_argument("--system", default=None, help="system message")
    p.add_argument("--raw", action="store_true", help="send the prompt verbatim, without the chat template")
    p.add_argument("--json", action="store_true", help="one JSON object per sample (text, token ids, logprobs)")
    p.add_argument("--api-key-env", default=None, metavar="NAME",
                   help="environment variable holding the server's API key (openai/ specs; none sent otherwise)")
    p.add_argument("--device", default=None, help="local models: cpu, cuda, cuda:1 (default: CUDA if available)")
    p.set_defaults(func=generate_command)


def generate_command(args: argparse.Namespace) -> int:
    """Print every sample of every prompt; a failed sample prints its error and makes the exit status 1."""
    from overseer.models import Chat, GenerateConfig, get_backend, split_spec

    config = GenerateConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
                            n=args.n, seed=args.seed, stop=tuple(args.stop))
    kind, _ = split_spec(args.model)
    options = {"device": args.device} if kind == "hf" else {}
    if args.api_key_env:
        options["api_key_env"] = args.api_key_env
    backend = get_backend(args.model, **options)
    prompts = [p if args.raw else Chat.user(p, system=args.system) for p in args.prompts]
    failed = 0
    for i, samples in enumerate(backend.generate(prompts, config)):
        for k, gen in enumerate(samples):
            failed += not gen.ok
            if args.json:
                print(json.dumps({"prompt": i, "sample": k, "text": gen.text, "token_ids": list(gen.token_ids),
                                  "logprobs": list(gen.logprobs), "finish_reason": gen.finish_reason,
                                  "error": gen.error}))
            elif gen.ok:
                print(f"[{i}.{k}] {gen.text}")
            else:
                print(f"[{i}.{k}] failed: {gen.error}", file=sys.stderr)
    return 1 if failed else 0
