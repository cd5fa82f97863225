"""``overseer guard run``, ``overseer guard report`` and ``overseer guard serve``."""

from __future__ import annotations

import argparse

from overseer.cli._config_command import ConfigCommand, command_group

GUARD_RUN = ConfigCommand(
    "overseer.guard.config", "GuardConfig", runner="overseer.guard.run",
    help="train constitutional classifiers on a constitution's synthetic data and attack every defence",
    description="Python equivalent: overseer.guard.run(GuardConfig(...)). Defaults: the offline proxy constitution "
    "(a fictional vault code and varnish recipe), SmolLM2-135M-Instruct guarded, input/output/exchange classifiers on "
    "its first 8 layers, a probe on its layer 12, a probe -> exchange cascade; thresholds for 5% false refusals.",
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``overseer guard ...``."""
    top_sub = command_group(sub, "guard", "constitutional classifiers: guarded generation, cascades, jailbreak "
                                          "robustness (Sharma et al. 2025; CC++ 2026)")
    GUARD_RUN.add_parser(top_sub, run_command)
    r = top_sub.add_parser("report", help="defence table of finished guard runs",
                           description="Python equivalent: overseer.guard.report.write_report([...], out=...)")
    r.add_argument("runs", nargs="+", help="guard run directories")
    r.add_argument("--out", help="also write <out>/report.md")
    r.set_defaults(func=report_command)
    s = top_sub.add_parser("serve", help="serve a guarded model behind an OpenAI-compatible endpoint (loopback)",
                           description="Chat completions of guard:POLICY[::MODEL] on http://127.0.0.1:PORT/v1 until "
                           "interrupted; each reply is refused or halted per the policy.")
    s.add_argument("policy", help="a guard run folder or its policy folder")
    s.add_argument("--model", help="the guarded model spec (default: the one the policy was trained for)")
    s.add_argument("--defence", help="none, input, output, exchange, probe, ensemble or cascade (default: the "
                   "policy's)")
    s.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: any free one)")
    s.add_argument("--max-tokens", type=int, default=64, help="most tokens of a reply when the request gives none")
    s.set_defaults(func=serve_command)


def run_command(args: argparse.Namespace) -> int:
    """Check names, then run; print the defence tables, the run path and its guarded-model spec."""
    from overseer.guard.report import write_report

    result = GUARD_RUN.run(args)
    print(write_report([result.path])[0], end="")
    print(f"wall time {result.wall_s:.0f} s")
    print(f"run: {result.path}")
    print(f"report: overseer guard report {result.path}")
    print(f"guarded model spec: guard:{result.path}")
    return 0


def report_command(args: argparse.Namespace) -> int:
    """Print the tables (and write report.md with --out)."""
    from overseer.guard.report import write_report

    text, path = write_report(args.runs, out=args.out)
    print(text, end="")
    if path is not None:
        print(f"report: {path}")
    return 0


def build_server(spec: str, port: int = 0, max_tokens: int = 64, defence: str | None = None) -> object:
    """A loopback OpenAI-compatible server whose chat completions come from the guarded model ``spec``."""
    from overseer.models import Chat, GenerateConfig, get_backend
    from overseer.testing import OpenAICompatServer

    guarded = get_backend(spec, **({"defence": defence} if defence else {}))

    def respond(body: dict) -> str:
        messages = [{"role": m["role"], "content": m.get("content") or ""} for m in body.get("messages") or []
                    if m.get("role") in ("system", "user", "assistant")]
        config = GenerateConfig(max_new_tokens=int(body.get("max_tokens") or max_tokens),
                                temperature=float(body.get("temperature") or 0.0))
        return guarded.generate([Chat.of(messages)], config)[0][0].text

    return OpenAICompatServer(None, port=port, model_name=spec, responder=respond)


def serve_command(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    import time

    spec = f"guard:{args.policy}" + (f"::{args.model}" if args.model else "")
    server = build_server(spec, args.port, args.max_tokens, args.defence)
    with server:
        print(f"serving {spec} at {server.url} (Ctrl-C stops)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0
