"""Bad inputs and faults against the CLI: how many end cleanly.

Every case runs ``python -m overseer ...`` as a subprocess (with a timeout) on tiny random models, a
few-row law-school file, the mock backend and loopback servers, and checks what the design says:

- a refusal (``error``): exit status 2, stderr exactly one line starting with ``error:``;
- a fault the run survives (``warn``): exit status 0, stderr exactly one ``warning:`` line;
- a run that must simply work (``ok``, e.g. the rerun after an endpoint is fixed): exit status 0,
  nothing on stderr but lines the design announces (``waiting for another process ...``);

and, always: no traceback, no timeout, and nothing half-written: after a refusal the case's folder
(runs directory included; caches aside) holds exactly what it held before, and after any case no
temporary file or directory, lock or half-finished run is left anywhere under it.

Real conditions where this machine allows them: a full disk is a 1 MiB tmpfs filled to the brim and
a read-only directory a read-only tmpfs (both need root: ``mount -t tmpfs``; without root a
read-only directory is a ``chmod 555`` folder and the full-disk cases are skipped, and say so).

Prints one line per case and, last, ``{"cases": N, "clean": K, "share": K/N}``.

    python benchmarks/bad_inputs.py                 # every case (a few minutes on 2 cores)
    python benchmarks/bad_inputs.py --only sweep_name_dotdot law_csv_empty --keep
    python benchmarks/bad_inputs.py --list
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------- results and checks

LEFTOVER = re.compile(r"(^\..*\.tmp|\.tmp-?\d*$|\.lock$|\.damaged-|overseer-write-check|\.partial$)")
"""Names that only a process in the middle of writing may leave: temporary files and dirs, locks."""

SIZES = ["--data-limit", "300", "--n-train", "60", "--n-test", "60", "--n-bootstrap", "50", "--epochs", "2"]
"""A weak-to-strong run small enough to take seconds with the tiny models."""


@dataclass
class Result:
    """One finished (or timed-out) CLI process."""

    argv: list[str]
    rc: int | None
    out: str
    err: str
    seconds: float

    @property
    def err_lines(self) -> list[str]:
        """Non-empty stderr lines."""
        return [line for line in self.err.splitlines() if line.strip()]


@dataclass
class Outcome:
    """What one case found: clean, or the problems that make it unclean."""

    name: str
    clean: bool
    problems: list[str]
    seconds: float
    shown: str = ""
    """The line the CLI printed that the case was about (its error or warning), or the last stderr."""
    skipped: str = ""
    notes: list[str] = field(default_factory=list)
    """Findings that do not make the case unclean (an empty folder left behind)."""


class Skip(Exception):
    """The machine cannot stage the case (no root for a tmpfs, a GPU present for the no-CUDA case)."""


def check(res: Result, expect: str, contains: str = "", allow: Sequence[str] = ()) -> list[str]:
    """Problems of ``res`` against the design: ``error`` (exit 2, one error line), ``warn`` or ``ok``.

    Args:
        res: the finished process.
        expect: ``error``, ``warn`` or ``ok``.
        contains: text the error or warning line must hold (case-insensitive).
        allow: regular expressions of extra stderr lines the design announces (kept out of the count).
    """
    problems = []
    if res.rc is None:
        return [f"timed out after {res.seconds:.0f}s"]
    if "Traceback (most recent call last)" in res.err or "Traceback (most recent call last)" in res.out:
        problems.append("traceback")
    lines = [line for line in res.err_lines if not any(re.search(a, line) for a in allow)]
    want_rc = 2 if expect == "error" else 0
    if res.rc != want_rc:
        problems.append(f"exit status {res.rc}, expected {want_rc}")
    if expect == "ok":
        if lines:
            problems.append(f"{len(lines)} unexpected stderr line(s)")
        return problems
    prefix = "error: " if expect == "error" else "warning: "
    if len(lines) != 1:
        problems.append(f"{len(lines)} stderr lines, expected exactly one {prefix.strip()} line")
    elif not lines[0].startswith(prefix):
        problems.append(f"stderr line does not start with {prefix!r}")
    elif contains and contains.lower() not in lines[0].lower():
        problems.append(f"{prefix.strip()} line does not mention {contains!r}")
    return problems


def snapshot(root: Path, skip: Sequence[str] = ("cache",)) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` (but the top-level ``skip`` folders) with its size and mtime (-1, 0 for a folder)."""
    found: dict[str, tuple[int, int]] = {}
    if not root.exists():
        return found
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in skip:
            continue
        with suppress(OSError):
            st = path.lstat()
            found[rel.as_posix()] = (-1, 0) if path.is_dir() else (st.st_size, st.st_mtime_ns)
    return found


EMPTY_DIR_NOTE = "left an empty new folder"


def changed(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    """Problems for every path a refused command created, removed or rewrote.

    A new folder left empty (a runs directory made for a lock, say) holds nothing half-written: it
    is a note (``left an empty new folder ...``), not a problem.
    """
    problems = []
    added = sorted(set(after) - set(before))
    empty_dirs = [p for p in added if after[p] == (-1, 0) and not any(q.startswith(p + "/") for q in added)]
    added = [p for p in added if p not in empty_dirs]
    removed = sorted(set(before) - set(after))
    rewritten = sorted(p for p in set(before) & set(after) if before[p] != after[p])
    for what, paths in (("created", added), ("removed", removed), ("rewrote", rewritten)):
        if paths:
            problems.append(f"{what} {', '.join(paths[:4])}" + (f" (+{len(paths) - 4})" if len(paths) > 4 else ""))
    return problems + [f"{EMPTY_DIR_NOTE} {p}" for p in empty_dirs]


def leftovers(root: Path) -> list[str]:
    """Problems for temporary files, locks and unfinished run directories anywhere under ``root``."""
    problems = []
    for path in sorted(root.rglob("*")) if root.exists() else []:
        if LEFTOVER.search(path.name):
            problems.append(f"left {path.relative_to(root).as_posix()}")
        elif path.is_dir() and (path / "config.json").is_file() and (path / "versions.json").is_file() \
                and not (path / "metrics.json").is_file():
            problems.append(f"half-written run {path.relative_to(root).as_posix()}")
    return problems


def run_dirs(out: Path) -> list[str]:
    """Names of the (visible) run and sweep directories in ``out``."""
    return sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")) if out.is_dir() else []


# --------------------------------------------------------------------------- loopback servers


class _StubServer:
    """A loopback HTTP server that answers every POST with HTTP ``status``, or never (``status=None``)."""

    def __init__(self, status: int | None):
        self.status = status
        self.release = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                return

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self.do_POST()

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                if stub.status is None:  # accept, read nothing more, never answer
                    stub.release.wait(600)
                    return
                raw = json.dumps({"error": {"message": f"stub server says {stub.status}"}}).encode()
                self.send_response(stub.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> _StubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()


# --------------------------------------------------------------------------- the bench


@dataclass
class Ctx:
    """One case's folder, its environment and the bench it runs on."""

    bench: Bench
    dir: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def runs(self) -> Path:
        """The case's runs directory (``runs`` in its folder)."""
        return self.dir / "runs"

    def cli(self, *argv: str, env: dict[str, str] | None = None, timeout: float | None = None) -> Result:
        """``python -m overseer ARGV`` in the case's folder."""
        return self.bench.cli(list(argv), self.dir, {**self.env, **(env or {})}, timeout)

    def w2s(self, *extra: str, out: Path | None = None) -> list[str]:
        """Arguments of a tiny weak-to-strong run (tiny weak and strong models, a few hundred texts)."""
        weak, strong = self.bench.models()
        return ["w2s", "run", "--weak", str(weak), "--strong", str(strong), *SIZES, "--no-progress",
                "--out", str(out or self.runs), *extra]

    def write(self, name: str, content: str | bytes) -> Path:
        """Write a file in the case's folder."""
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path


CaseFn = Callable[[Ctx], "tuple[Result, list[str]]"]
CASES: dict[str, tuple[CaseFn, bool]] = {}


def case(name: str, quick: bool = False) -> Callable[[CaseFn], CaseFn]:
    """Register a case: ``fn(ctx) -> (the result that counts, problems found)``; ``quick`` ones run in pytest."""

    def register(fn: CaseFn) -> CaseFn:
        CASES[name] = (fn, quick)
        return fn

    return register


class Bench:
    """Shared fixtures, built on first use under ``work``: tiny models, a finished run, servers' model."""

    def __init__(self, work: Path, timeout: float = 300.0):
        self.work = work
        self.timeout = timeout
        self._models: tuple[Path, Path] | None = None
        self._lm: Any = None
        self._base: tuple[Path, Path] | None = None
        self._sweep: tuple[Path, Path] | None = None
        self._law: Path | None = None
        self.mounts: list[Path] = []

    # ------------------------------------------------------------------ processes

    def base_env(self) -> dict[str, str]:
        """The environment of every command: offline, one thread, no ``OVERSEER_*`` of the caller's."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OVERSEER_")}
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1",
                   MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
                   OVERSEER_DATA_DIR=str(self.law_dir()))
        return env

    def cli(self, argv: list[str], cwd: Path, env: dict[str, str], timeout: float | None = None) -> Result:
        """``python -m overseer ARGV`` in ``cwd``."""
        return self.python(["-m", "overseer", *argv], cwd, env, timeout)

    def python(self, args: list[str], cwd: Path, env: dict[str, str], timeout: float | None = None) -> Result:
        """``python ARGS`` in ``cwd`` with its cache in ``cwd/cache`` (unless ``env`` moves it)."""
        full = {**self.base_env(), "OVERSEER_CACHE_DIR": str(cwd / "cache"), **env}
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, *args], cwd=cwd, env=full, capture_output=True, text=True,
                                  errors="replace", timeout=timeout or self.timeout)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
            err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
            return Result(args, None, out, err, time.perf_counter() - t0)
        return Result(args, proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - t0)

    # ------------------------------------------------------------------ fixtures

    def models(self) -> tuple[Path, Path]:
        """Two tiny random Llamas (weak, strong) with a byte-level tokenizer."""
        if self._models is None:
            from overseer._progress import silence_library_bars
            from overseer.models._tiny import build_tiny_causal_lm

            silence_library_bars()
            self._models = (build_tiny_causal_lm(self.work / "models" / "weak", seed=0),
                            build_tiny_causal_lm(self.work / "models" / "strong", seed=1))
        return self._models

    def lm(self) -> Any:
        """The weak tiny model loaded here, for the loopback OpenAI-compatible server."""
        if self._lm is None:
            from overseer.models import load_model

            self._lm = load_model(str(self.models()[0]), device="cpu")
        return self._lm

    def law_dir(self) -> Path:
        """A data folder holding only ``law_school/law_data.csv`` with 40 made-up students."""
        if self._law is None:
            import random

            rng = random.Random(0)
            rows = [",race,sex,LSAT,UGPA,region_first,ZFYA,sander_index,first_pf"]
            for i in range(40):
                rows.append(f"{i},{rng.choice(['White', 'Black', 'Asian'])},{rng.choice([1, 2])},"
                            f"{rng.randint(20, 46)}.0,{rng.uniform(2.0, 4.0):.1f},GL,0.1,0.7,1.0")
            self._law = self.work / "data"
            (self._law / "law_school").mkdir(parents=True, exist_ok=True)
            (self._law / "law_school" / "law_data.csv").write_text("\n".join(rows) + "\n")
        return self._law

    def _setup_dir(self, name: str) -> Path:
        path = self.work / "fixtures" / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def base_run(self) -> tuple[Path, Path]:
        """A finished tiny weak-to-strong run: (its runs directory, the activation cache it filled)."""
        if self._base is None:
            where = self._setup_dir("base")
            ctx = Ctx(self, where)
            res = ctx.cli(*ctx.w2s())
            if res.rc != 0:
                raise RuntimeError(f"the base run failed ({res.rc}): {res.err[-2000:]}")
            self._base = (ctx.runs, where / "cache")
        return self._base

    def base_sweep(self) -> tuple[Path, Path]:
        """A finished tiny sweep (2 rungs, xent, seed 0): (its runs directory, its config)."""
        if self._sweep is None:
            where = self._setup_dir("sweep")
            config = where / "sweep.yaml"
            config.write_text(sweep_yaml(self.models(), name="tiny"))
            res = self.cli(["w2s", "sweep", "--config", str(config), "--out", str(where / "runs")], where, {})
            if res.rc != 0:
                raise RuntimeError(f"the base sweep failed ({res.rc}): {res.err[-2000:]}")
            self._sweep = (where / "runs", config)
        return self._sweep

    # ------------------------------------------------------------------ mounts

    def tmpfs(self, path: Path, size: str = "1m", read_only: bool = False) -> Path:
        """A fresh tmpfs at ``path`` (root only); :class:`Skip` where it cannot be mounted."""
        path.mkdir(parents=True, exist_ok=True)
        if shutil.which("mount") is None or os.geteuid() != 0:
            raise Skip("needs root to mount a tmpfs")
        opts = f"size={size}" + (",ro" if read_only else "")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise Skip(f"cannot mount a tmpfs: {proc.stderr.strip()}")
        self.mounts.append(path)
        return path

    def read_only_dir(self, path: Path) -> Path:
        """A directory nobody may write to: a read-only tmpfs as root, else a ``chmod 555`` folder."""
        if os.geteuid() == 0:
            return self.tmpfs(path, read_only=True)
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o555)
        return path

    def unmount_all(self) -> None:
        """Unmount every tmpfs still mounted."""
        while self.mounts:
            path = self.mounts.pop()
            subprocess.run(["umount", "-l", str(path)], capture_output=True)

    def close(self) -> None:
        """Release what the bench holds (mounts)."""
        self.unmount_all()

    # ------------------------------------------------------------------ running cases

    def run_case(self, name: str) -> Outcome:
        """Run one registered case in a fresh folder and judge it."""
        fn, _ = CASES[name]
        where = self.work / "cases" / name
        if where.exists():
            for mount in [m for m in self.mounts if where in m.parents]:
                subprocess.run(["umount", "-l", str(mount)], capture_output=True)
                self.mounts.remove(mount)
            _make_writable(where)
            shutil.rmtree(where, ignore_errors=True)
        where.mkdir(parents=True)
        t0 = time.perf_counter()
        on_mounts: list[str] = []
        try:
            res, problems = fn(Ctx(self, where))
        except Skip as exc:
            return Outcome(name, True, [], time.perf_counter() - t0, skipped=str(exc))
        except Exception as exc:  # noqa: BLE001 - a broken case is reported, not fatal to the others
            return Outcome(name, False, [f"the case itself failed: {type(exc).__name__}: {exc}"],
                           time.perf_counter() - t0)
        finally:
            for mount in [m for m in self.mounts if where in m.parents]:
                on_mounts += [f"{p} (on {mount.name})" for p in leftovers(mount)]  # judged before the mount goes
                subprocess.run(["umount", "-l", str(mount)], capture_output=True)
                self.mounts.remove(mount)
        problems = problems + on_mounts + leftovers(where)
        notes = [p for p in problems if p.startswith(EMPTY_DIR_NOTE)]
        problems = [p for p in problems if p not in notes]
        shown = next((line for line in res.err_lines if line.startswith(("error:", "warning:"))),
                     res.err_lines[-1] if res.err_lines else "")
        return Outcome(name, not problems, problems, time.perf_counter() - t0, shown, notes=notes)


def _make_writable(path: Path) -> None:
    for p in [path, *path.rglob("*")] if path.exists() else []:
        with suppress(OSError):
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)


def sweep_yaml(models: Sequence[Path], name: str = "tiny", **extra: Any) -> str:
    """A tiny sweep config: the models as the ladder, 300 geo_facts texts, xent, seed 0."""
    cfg = {"name": name, "ladder": [str(m) for m in models],
           "datasets": [{"name": "geo_facts", "args": {"limit": 300}}],
           "methods": ["xent"], "seeds": [0], "n_train": 60, "n_test": 60, "n_bootstrap": 50, "head": {"epochs": 2},
           **extra}
    return json.dumps(cfg)  # JSON is YAML


def refused(ctx: Ctx, *argv: str, contains: str = "", env: dict[str, str] | None = None) -> tuple[Result, list[str]]:
    """Run a command that must be refused: one error line, exit 2, the case folder untouched."""
    before = snapshot(ctx.dir)
    res = ctx.cli(*argv, env=env)
    return res, check(res, "error", contains) + changed(before, snapshot(ctx.dir))


def finished_run(runs: Path) -> list[str]:
    """Problems unless ``runs`` holds exactly one finished run."""
    names = [n for n in run_dirs(runs) if not n.startswith("sweep-")]
    done = [n for n in names if (runs / n / "metrics.json").is_file()]
    return [] if len(done) == 1 == len(names) else [f"expected one finished run in {runs.name}, found {names}"]


# =========================================================================== the cases
# --------------------------------------------------------------------------- names and flags


@case("unknown_dataset", quick=True)
def _(ctx: Ctx):
    return refused(ctx, *ctx.w2s("--dataset", "imdb"), contains="unknown dataset 'imdb'")


@case("unknown_method")
def _(ctx: Ctx):
    return refused(ctx, *ctx.w2s("--method", "magic"), contains="unknown method 'magic'")


@case("unknown_condition")
def _(ctx: Ctx):
    return refused(ctx, "selfcorrect", "run", "--model", "mock", "--suite", "law", "--conditions", "q,zzz",
                   contains="unknown condition 'zzz'")


@case("unknown_suite")
def _(ctx: Ctx):
    return refused(ctx, "selfcorrect", "run", "--model", "mock", "--suite", "truthfulqa",
                   contains="unknown suite 'truthfulqa'")


@case("weak_no_such_model")
def _(ctx: Ctx):
    return refused(ctx, *ctx.w2s("--weak", "no-such-model"), contains="no-such-model")


@case("weak_noise_rate_out_of_range", quick=True)
def _(ctx: Ctx):
    return refused(ctx, *ctx.w2s("--weak", "noise:1.5"), contains="'noise:1.5'")


@case("weak_noise_cc_one_rate", quick=True)
def _(ctx: Ctx):
    return refused(ctx, *ctx.w2s("--weak", "noise-cc:0.1"), contains="noise-cc takes 2")


@case("pvg_unknown_reward", quick=True)
def _(ctx: Ctx):
    return refused(ctx, "pvg", "run", "--reward", "bribe", "--out", str(ctx.runs), contains="unknown reward 'bribe'")


@case("pvg_unknown_prover", quick=True)
def _(ctx: Ctx):
    return refused(ctx, "pvg", "run", "--prover", "no-such-model", "--out", str(ctx.runs), contains="no-such-model")


@case("pvg_gsm8k_missing_data", quick=True)
def _(ctx: Ctx):
    return refused(ctx, "pvg", "run", "--task", "gsm8k", "--data-path", str(ctx.dir / "nope"), "--out",
                   str(ctx.runs), contains="does not exist")


@case("head_cv_folds_one", quick=True)
def _(ctx: Ctx):
    return refused(ctx, *ctx.w2s("--head-cv-folds", "1"), contains="cv_folds must be at least 2")


@case("mistyped_rung", quick=True)
def _(ctx: Ctx):
    return refused(ctx, *ctx.w2s("--weak", "smollm2-135m-l99"), contains="smollm2-135m-l99")


@case("device_cuda_without_cuda", quick=True)
def _(ctx: Ctx):
    import torch

    if torch.cuda.is_available():
        raise Skip("this machine has CUDA")
    return refused(ctx, *ctx.w2s("--device", "cuda"), contains="cuda")


@case("negative_n_train")
def _(ctx: Ctx):
    return refused(ctx, *ctx.w2s("--n-train", "-5"), contains="n_train")


@case("string_for_integer_flag")
def _(ctx: Ctx):
    return refused(ctx, *ctx.w2s("--n-train", "many"), contains="n_train")


@case("method_arg_not_a_number", quick=True)
def _(ctx: Ctx):
    return refused(ctx, *ctx.w2s("--method", "logconf", "--method-arg", "aux_coef=abc"), contains="aux_coef")


@case("method_arg_without_value")
def _(ctx: Ctx):
    return refused(ctx, *ctx.w2s("--method", "logconf", "--method-arg", "aux_coef"), contains="aux_coef")


@case("method_arg_unknown_key")
def _(ctx: Ctx):
    return refused(ctx, *ctx.w2s("--method-arg", "nonsense=1"), contains="nonsense")


@case("unknown_flag", quick=True)
def _(ctx: Ctx):
    return refused(ctx, *ctx.w2s("--n-trian", "5"), contains="--n-trian")


@case("flag_choice_not_allowed")
def _(ctx: Ctx):
    return refused(ctx, *ctx.w2s("--method", "logconf", "--warmup-schedule", "bogus"), contains="bogus")


@case("flag_value_not_a_number")
def _(ctx: Ctx):
    return refused(ctx, "generate", "--model", "mock", "--temperature", "hot", "hello", contains="hot")


@case("required_flag_missing")
def _(ctx: Ctx):
    return refused(ctx, "w2s", "sweep", "--out", str(ctx.runs), contains="--config")


@case("selfcorrect_negative_students")
def _(ctx: Ctx):
    return refused(ctx, "selfcorrect", "run", "--model", "mock", "--suite", "law", "--law-students", "-3",
                   contains="law_students")


# --------------------------------------------------------------------------- config files


@case("yaml_malformed")
def _(ctx: Ctx):
    cfg = ctx.write("bad.yaml", "n_train: [1,\n")
    return refused(ctx, *ctx.w2s("--config", str(cfg)), contains="YAML")


@case("yaml_head_lr_string", quick=True)
def _(ctx: Ctx):
    cfg = ctx.write("head.yaml", "head:\n  lr: fast\n")
    return refused(ctx, *ctx.w2s("--config", str(cfg)), contains="head.lr")


@case("yaml_head_epochs_string")
def _(ctx: Ctx):
    cfg = ctx.write("head.yaml", "head: {epochs: three}\n")
    return refused(ctx, "w2s", "run", "--config", str(cfg), "--out", str(ctx.runs), contains="epochs")


@case("yaml_top_level_list", quick=True)
def _(ctx: Ctx):
    cfg = ctx.write("list.yaml", "- n_train: 10\n- n_test: 10\n")
    return refused(ctx, "w2s", "run", "--config", str(cfg), "--out", str(ctx.runs), contains="list.yaml")


@case("yaml_top_level_scalar")
def _(ctx: Ctx):
    cfg = ctx.write("scalar.yaml", "just some words\n")
    return refused(ctx, "selfcorrect", "run", "--config", str(cfg), "--out", str(ctx.runs), contains="scalar.yaml")


@case("yaml_section_wrong_type")
def _(ctx: Ctx):
    cfg = ctx.write("head.yaml", "head: 5\n")
    return refused(ctx, "w2s", "run", "--config", str(cfg), "--out", str(ctx.runs), contains="head")


@case("yaml_non_utf8", quick=True)
def _(ctx: Ctx):
    cfg = ctx.write("latin1.yaml", b"n_train: 10\nextra_note: caf\xe9\n")
    return refused(ctx, "w2s", "run", "--config", str(cfg), "--out", str(ctx.runs), contains="latin1.yaml")


@case("yaml_unknown_key")
def _(ctx: Ctx):
    cfg = ctx.write("typo.yaml", "n_trian: 10\n")
    return refused(ctx, "w2s", "run", "--config", str(cfg), "--out", str(ctx.runs), contains="n_trian")


@case("yaml_missing_file")
def _(ctx: Ctx):
    return refused(ctx, "w2s", "run", "--config", str(ctx.dir / "nope.yaml"), "--out", str(ctx.runs),
                   contains="nope.yaml")


# --------------------------------------------------------------------------- runs directory


@case("out_is_a_file")
def _(ctx: Ctx):
    ctx.write("runs", "not a directory\n")
    return refused(ctx, *ctx.w2s(), contains="--out")


@case("out_under_a_file")
def _(ctx: Ctx):
    ctx.write("afile", "x\n")
    return refused(ctx, *ctx.w2s(out=ctx.dir / "afile" / "runs"), contains="--out")


@case("out_read_only")
def _(ctx: Ctx):
    ro = ctx.bench.read_only_dir(ctx.dir / "ro")
    return refused(ctx, *ctx.w2s(out=ro), contains="--out")


@case("out_cannot_be_created_read_only_parent")
def _(ctx: Ctx):
    ro = ctx.bench.read_only_dir(ctx.dir / "ro")
    return refused(ctx, "selfcorrect", "run", "--model", "mock", "--suite", "law", "--out", str(ro / "runs"),
                   contains="--out")


# --------------------------------------------------------------------------- data files


def _local(ctx: Ctx, name: str, content: str | bytes, *extra: str) -> list[str]:
    path = ctx.write(name, content)
    return ctx.w2s("--dataset", "local", "--data-path", str(path), *extra)


@case("local_missing_field")
def _(ctx: Ctx):
    argv = _local(ctx, "d.csv", "text,target\nthe city,1\nthe country,0\n")
    return refused(ctx, *argv, contains="'label'")


@case("local_non_binary_labels")
def _(ctx: Ctx):
    rows = "".join(f"paris is a city number {i},{i % 3}\n" for i in range(300))
    return refused(ctx, *_local(ctx, "d.csv", "text,label\n" + rows), contains="label")


@case("local_non_utf8", quick=True)
def _(ctx: Ctx):
    return refused(ctx, *_local(ctx, "d.csv", b"text,label\ncaf\xe9 au lait,1\nthe city,0\n"), contains="d.csv")


@case("local_empty_file")
def _(ctx: Ctx):
    return refused(ctx, *_local(ctx, "d.jsonl", ""), contains="d.jsonl")


@case("local_empty_csv")
def _(ctx: Ctx):
    return refused(ctx, *_local(ctx, "d.csv", ""), contains="d.csv")


@case("local_all_texts_empty")
def _(ctx: Ctx):
    rows = "".join(json.dumps({"text": " " if i % 2 else "", "label": i % 2}) + "\n" for i in range(20))
    return refused(ctx, *_local(ctx, "d.jsonl", rows), contains="empty")


@case("local_some_texts_empty")
def _(ctx: Ctx):
    words = "the a city country paris france london england tokyo japan berlin germany yes no".split()
    rows = []
    for i in range(320):
        text = "" if i % 100 == 7 else " ".join(words[(i * k) % len(words)] for k in (1, 3, 5, 7)) + f" {i}"
        rows.append(json.dumps({"text": text, "label": (i // 2) % 2}))
    argv = _local(ctx, "d.jsonl", "\n".join(rows) + "\n")
    res = ctx.cli(*argv)
    return res, check(res, "warn", "empty") + finished_run(ctx.runs)


@case("data_path_missing")
def _(ctx: Ctx):
    return refused(ctx, *ctx.w2s("--dataset", "local", "--data-path", str(ctx.dir / "none.csv")), contains="none.csv")


@case("law_csv_empty", quick=True)
def _(ctx: Ctx):
    (ctx.dir / "data" / "law_school").mkdir(parents=True)
    ctx.write("data/law_school/law_data.csv", "")
    return refused(ctx, "selfcorrect", "run", "--model", "mock", "--suite", "law", "--data-dir",
                   str(ctx.dir / "data"), "--no-progress", contains="law_data.csv")


@case("law_csv_not_utf8", quick=True)
def _(ctx: Ctx):
    ctx.write("data/law_school/law_data.csv", b",race,sex,LSAT,UGPA\n0,Wh\xefte,1,39.0,3.1\n\xff\xfe\n")
    return refused(ctx, "selfcorrect", "run", "--model", "mock", "--suite", "law", "--data-dir",
                   str(ctx.dir / "data"), "--no-progress", contains="law_data.csv")


_BBQ_RECORD = {
    "example_id": 0, "question_index": "1", "question_polarity": "neg", "context_condition": "ambig",
    "category": "Age", "answer_info": {"ans0": ["grandfather", "old"], "ans1": ["grandson", "nonOld"],
                                       "ans2": ["Can't be determined", "unknown"]},
    "additional_metadata": {"subcategory": "None", "stereotyped_groups": ["old"], "version": "a", "source": ""},
    "context": "I saw a grandson and their grandfather last week.", "question": "Who was not comfortable?",
    "ans0": "The grandfather", "ans1": "The grandson", "ans2": "Can't be determined", "label": 2,
}
_WINO_HEADER = "occupation(0)\tother-participant(1)\tanswer\tsentence\n"
_WINO_STATS = "occupation\tbls_pct_female\nnurse\t90.0\n"


def _selfcorrect_data(ctx: Ctx, suite: str, files: dict[str, str | bytes]) -> list[str]:
    """A data folder holding only ``files`` and the arguments of a mock self-correction run on ``suite``."""
    for name, content in files.items():
        ctx.write(f"data/{name}", content)
    return ["selfcorrect", "run", "--model", "mock", "--suite", suite, "--data-dir", str(ctx.dir / "data"),
            "--no-progress"]


@case("bbq_file_not_utf8", quick=True)
def _(ctx: Ctx):
    line = json.dumps(_BBQ_RECORD).replace("grandfather last", "gr\\u00e4ndfather last").encode()
    argv = _selfcorrect_data(ctx, "bbq", {"bbq/Age.jsonl": line.replace(b"\\u00e4", b"\xe4") + b"\n"})
    return refused(ctx, *argv, contains="Age.jsonl")


@case("bbq_file_empty", quick=True)
def _(ctx: Ctx):
    return refused(ctx, *_selfcorrect_data(ctx, "bbq", {"bbq/Age.jsonl": ""}), contains="Age")


@case("winogender_templates_not_utf8", quick=True)
def _(ctx: Ctx):
    row = b"nurse\tpatient\t0\tThe nurse said \xff $NOM_PRONOUN\n"
    files = {"winogender/templates.tsv": _WINO_HEADER.encode() + row,
             "winogender/occupations-stats.tsv": _WINO_STATS}
    return refused(ctx, *_selfcorrect_data(ctx, "winogender", files), contains="templates.tsv")


@case("winogender_templates_empty")
def _(ctx: Ctx):
    files = {"winogender/templates.tsv": "", "winogender/occupations-stats.tsv": _WINO_STATS}
    return refused(ctx, *_selfcorrect_data(ctx, "winogender", files), contains="templates.tsv")


@case("config_is_a_directory", quick=True)
def _(ctx: Ctx):
    (ctx.dir / "conf.d").mkdir()
    return refused(ctx, "w2s", "run", "--config", str(ctx.dir / "conf.d"), "--out", str(ctx.runs), contains="conf.d")


@case("data_dir_missing")
def _(ctx: Ctx):
    return refused(ctx, "selfcorrect", "run", "--model", "mock", "--suite", "law", "--data-dir",
                   str(ctx.dir / "nowhere"), contains="nowhere")


# --------------------------------------------------------------------------- endpoints


def _endpoint(url: str, *extra: str) -> list[str]:
    return ["selfcorrect", "run", "--model", "tiny", "--endpoint", url, "--suite", "law", "--law-students", "30",
            "--conditions", "q", "--n-bootstrap", "50", "--no-progress", "--out", "runs", *extra]


@case("endpoint_403")
def _(ctx: Ctx):
    from overseer.testing import OpenAICompatServer

    with OpenAICompatServer(ctx.bench.lm(), model_name="tiny", refuse=True) as srv:
        return refused(ctx, *_endpoint(srv.url), contains="403")


@case("endpoint_500")
def _(ctx: Ctx):
    with _StubServer(500) as srv:
        return refused(ctx, *_endpoint(srv.url, "--endpoint-retries", "0"), contains="500")


@case("endpoint_hangs")
def _(ctx: Ctx):
    with _StubServer(None) as srv:
        return refused(ctx, *_endpoint(srv.url, "--endpoint-timeout", "1", "--endpoint-retries", "0"),
                       contains="1s")


@case("endpoint_connection_refused")
def _(ctx: Ctx):
    return refused(ctx, *_endpoint("http://127.0.0.1:1/v1", "--endpoint-retries", "0"), contains="connect")


@case("endpoint_no_logprobs")
def _(ctx: Ctx):
    from overseer.testing import OpenAICompatServer

    with OpenAICompatServer(ctx.bench.lm(), model_name="tiny", no_logprobs=True) as srv:
        # full scoring asked for by name (auto would fall back to sampled answers, which need no logprobs)
        return refused(ctx, *_endpoint(srv.url), "--scoring", "full", contains="logprobs")


@case("endpoint_failure_does_not_poison_rerun", quick=True)
def _(ctx: Ctx):
    from overseer.testing import OpenAICompatServer

    with OpenAICompatServer(ctx.bench.lm(), model_name="tiny", no_logprobs=True) as srv:
        first, problems = refused(ctx, *_endpoint(srv.url), "--scoring", "full", contains="logprobs")
        srv.no_logprobs = False  # the server is fixed; the same command must now work
        res = ctx.cli(*_endpoint(srv.url), "--scoring", "full")
    problems += [f"after the fix: {p}" for p in check(res, "ok")] + finished_run(ctx.runs)
    res.err = first.err + res.err  # shown: the refusal, then whatever the rerun printed
    return res, problems


@case("endpoint_api_key_env_unset")
def _(ctx: Ctx):
    ctx.env.pop("OVERSEER_BENCH_NO_SUCH_KEY", None)
    return refused(ctx, *_endpoint("http://127.0.0.1:1/v1", "--api-key-env", "OVERSEER_BENCH_NO_SUCH_KEY"),
                   contains="OVERSEER_BENCH_NO_SUCH_KEY")


@case("endpoint_not_http")
def _(ctx: Ctx):
    return refused(ctx, *_endpoint("ftp://127.0.0.1/v1"), contains="http(s)")


@case("endpoint_cache_read_only")
def _(ctx: Ctx):
    from overseer.testing import OpenAICompatServer

    cache = ctx.bench.read_only_dir(ctx.dir / "rocache")
    with OpenAICompatServer(ctx.bench.lm(), model_name="tiny") as srv:
        res = ctx.cli(*_endpoint(srv.url), env={"OVERSEER_CACHE_DIR": str(cache)})
    return res, check(res, "warn", "cache") + finished_run(ctx.runs)


@case("endpoint_cache_disk_full")
def _(ctx: Ctx):
    from overseer.testing import OpenAICompatServer

    full = ctx.bench.tmpfs(ctx.dir / "fullcache", "1m")
    (full / "endpoint").mkdir()
    _fill(full, leave_pages=2)  # room for an empty responses.sqlite at most, not for the answers
    with OpenAICompatServer(ctx.bench.lm(), model_name="tiny") as srv:
        res = ctx.cli(*_endpoint(srv.url), env={"OVERSEER_CACHE_DIR": str(full)})
    return res, check(res, "warn", "cache") + finished_run(ctx.runs)


@case("endpoint_cache_damaged")
def _(ctx: Ctx):
    from overseer.testing import OpenAICompatServer

    ctx.write("cache/endpoint/responses.sqlite", b"not a database at all\n" * 100)
    with OpenAICompatServer(ctx.bench.lm(), model_name="tiny") as srv:
        res = ctx.cli(*_endpoint(srv.url))
    return res, check(res, "warn", "cache") + finished_run(ctx.runs)


# --------------------------------------------------------------------------- generate


@case("generate_unknown_backend_prefix", quick=True)
def _(ctx: Ctx):
    return refused(ctx, "generate", "--model", "vllm/x@http://127.0.0.1:1/v1", "hello", contains="vllm")


@case("generate_negative_temperature", quick=True)
def _(ctx: Ctx):
    return refused(ctx, "generate", "--model", "mock", "--temperature", "-1", "hello", contains="temperature")


@case("generate_top_p_above_one")
def _(ctx: Ctx):
    return refused(ctx, "generate", "--model", "mock", "--top-p", "1.5", "hello", contains="top_p")


@case("generate_zero_samples")
def _(ctx: Ctx):
    return refused(ctx, "generate", "--model", "mock", "--n", "0", "hello", contains="n")


@case("generate_device_cuda_without_cuda")
def _(ctx: Ctx):
    import torch

    if torch.cuda.is_available():
        raise Skip("this machine has CUDA")
    return refused(ctx, "generate", "--model", str(ctx.bench.models()[0]), "--device", "cuda", "hello",
                   contains="cuda")


# --------------------------------------------------------------------------- sweeps


@case("sweep_name_dotdot", quick=True)
def _(ctx: Ctx):
    cfg = ctx.write("s.yaml", sweep_yaml(ctx.bench.models(), name=".."))
    return refused(ctx, "w2s", "sweep", "--config", str(cfg), "--out", str(ctx.runs), contains="sweep name '..'")


@case("sweep_name_escapes")
def _(ctx: Ctx):
    cfg = ctx.write("s.yaml", sweep_yaml(ctx.bench.models(), name="x/../../elsewhere"))
    return refused(ctx, "w2s", "sweep", "--config", str(cfg), "--out", str(ctx.runs), contains="sweep name")


@case("sweep_unknown_method")
def _(ctx: Ctx):
    cfg = ctx.write("s.yaml", sweep_yaml(ctx.bench.models(), methods=["magic"]))
    return refused(ctx, "w2s", "sweep", "--config", str(cfg), "--out", str(ctx.runs), contains="magic")


@case("sweep_config_top_level_list")
def _(ctx: Ctx):
    cfg = ctx.write("s.yaml", "- ladder: [a, b]\n")
    return refused(ctx, "w2s", "sweep", "--config", str(cfg), "--out", str(ctx.runs), contains="mapping")


def _damaged_job(ctx: Ctx, filename: str) -> tuple[Result, list[str]]:
    runs, config = ctx.bench.base_sweep()
    shutil.copytree(runs, ctx.runs)
    jobs = sorted(p for p in (ctx.runs / ".jobs").iterdir() if (p / filename).is_file())
    target = jobs[0] / filename
    target.write_bytes(target.read_bytes()[: max(1, target.stat().st_size // 2)])
    res = ctx.cli("w2s", "sweep", "--config", str(config), "--out", str(ctx.runs))
    problems = check(res, "warn", "damaged")
    if "1 jobs computed" not in res.out:
        problems.append("the damaged job was not computed again exactly once")
    return res, problems


@case("sweep_job_outputs_truncated")
def _(ctx: Ctx):
    return _damaged_job(ctx, "outputs.npz")


@case("sweep_job_record_truncated")
def _(ctx: Ctx):
    return _damaged_job(ctx, "job.json")


# --------------------------------------------------------------------------- runs index and activation cache


def _fake_run(runs: Path) -> str:
    """A finished (tiny, made-up) run written through the results layer, as any pillar writes one."""
    from overseer.results import start_run

    writer = start_run("w2s", {"note": "bad_inputs fixture"}, runs)
    with writer:
        writer.finish({"accuracy": {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6}}, summary={"accuracy": 0.5})
    return writer.result.path.name


@case("runs_index_corrupted", quick=True)
def _(ctx: Ctx):
    name = _fake_run(ctx.runs)
    (ctx.runs / "index.sqlite").write_bytes(b"this is not an SQLite database\n" * 200)
    res = ctx.cli("runs", "--out", str(ctx.runs))
    problems = check(res, "warn", "index")
    if name not in res.out:
        problems.append(f"run {name} not listed")
    again = ctx.cli("runs", "--out", str(ctx.runs))  # rebuilt: the second listing is quiet
    problems += [f"second listing: {p}" for p in check(again, "ok")]
    return res, problems


@case("w2s_run_index_corrupted")
def _(ctx: Ctx):
    runs, cache = ctx.bench.base_run()
    shutil.copytree(cache, ctx.dir / "cache")
    ctx.runs.mkdir()
    (ctx.runs / "index.sqlite").write_bytes(b"garbage " * 1000)
    res = ctx.cli(*ctx.w2s())
    return res, check(res, "warn", "index") + finished_run(ctx.runs)


@case("runs_unknown_name")
def _(ctx: Ctx):
    _fake_run(ctx.runs)
    return refused(ctx, "runs", "--out", str(ctx.runs), "w2s-000000000000", contains="w2s-000000000000")


@case("runs_name_dotdot")
def _(ctx: Ctx):
    return refused(ctx, "runs", "--out", str(ctx.runs), "..", contains="'..'")


@case("activation_cache_entry_truncated")
def _(ctx: Ctx):
    _, cache = ctx.bench.base_run()
    shutil.copytree(cache, ctx.dir / "cache")
    entry = sorted((ctx.dir / "cache").rglob("*.npy"))[0]
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    res = ctx.cli(*ctx.w2s())
    return res, check(res, "warn", "damaged") + finished_run(ctx.runs)


def _fill(mount: Path, leave_pages: int = 0) -> None:
    """Fill the file system at ``mount`` until only ``leave_pages`` 4 KiB pages are free."""
    st = os.statvfs(mount)
    free = st.f_bavail * st.f_frsize - leave_pages * 4096
    with open(mount / "filler", "wb", buffering=0) as fh, suppress(OSError):
        fh.write(b"\0" * max(0, free))
    if leave_pages == 0:  # top up whatever rounding left
        with open(mount / "filler2", "wb", buffering=0) as fh, suppress(OSError):
            while fh.write(b"\0" * 512):
                pass


@case("activation_cache_disk_full")
def _(ctx: Ctx):
    full = ctx.bench.tmpfs(ctx.dir / "fullcache", "1m")
    _fill(full)
    res = ctx.cli(*ctx.w2s(), env={"OVERSEER_CACHE_DIR": str(full)})
    return res, check(res, "warn", "activation cache") + finished_run(ctx.runs)


@case("disk_full_just_after_publishing")
def _(ctx: Ctx):
    runs, cache = ctx.bench.base_run()
    shutil.copytree(cache, ctx.dir / "cache")
    disk = ctx.bench.tmpfs(ctx.dir / "disk", "8m")
    out = disk / "runs"
    shutil.copytree(runs / ".jobs", out / ".jobs")  # jobs are reused: the run writes only its own directory
    (run,) = [p for p in runs.iterdir() if p.name.startswith("w2s-")]
    pages = sum(-(-p.stat().st_size // 4096) for p in run.rglob("*") if p.is_file())
    _fill(disk, leave_pages=pages + 1)  # room for the run, not for the index beside it
    res = ctx.cli(*ctx.w2s(out=out))
    if res.rc == 2:  # the run itself did not fit: refused in one line, nothing published
        return res, check(res, "error", "") + [n for n in run_dirs(out) if n.startswith("w2s-")]
    return res, check(res, "warn", "index") + finished_run(out)


# --------------------------------------------------------------------------- concurrency and library calls


@case("two_identical_runs_at_once")
def _(ctx: Ctx):
    argv = [sys.executable, "-m", "overseer", *ctx.w2s()]
    env = {**ctx.bench.base_env(), "OVERSEER_CACHE_DIR": str(ctx.dir / "cache")}
    t0 = time.perf_counter()
    procs = [subprocess.Popen(argv, cwd=ctx.dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=ctx.bench.timeout)
            results.append(Result(argv, proc.returncode, out, err, time.perf_counter() - t0))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            results.append(Result(argv, None, out, err, time.perf_counter() - t0))
    problems = []
    for i, res in enumerate(results):
        problems += [f"process {i}: {p}" for p in check(res, "ok", allow=(r"^waiting for another process",))]
    paths = {line for res in results for line in res.out.splitlines() if line.startswith("run: ")}
    if len(paths) != 1:
        problems.append(f"the two processes reported {len(paths)} different runs")
    joined = Result(argv, results[0].rc if not problems else 2, results[0].out + results[1].out,
                    results[0].err + results[1].err, time.perf_counter() - t0)
    return joined, problems + finished_run(ctx.runs)


@case("classifier_dir_without_config")
def _(ctx: Ctx):
    """No CLI command takes a classifier directory: the library call, wrapped as the CLI wraps errors."""
    from overseer.models import ClassifierConfig, SequenceClassifier
    from overseer.models._classifier import CONFIG_FILE

    saved = ctx.dir / "clf"
    SequenceClassifier.build(ClassifierConfig(str(ctx.bench.models()[0])), seed=0).save(saved)
    (saved / CONFIG_FILE).unlink()
    code = ("import sys\nfrom overseer.errors import OverseerError\nfrom overseer.models import SequenceClassifier\n"
            "try:\n    SequenceClassifier.load(sys.argv[1])\nexcept OverseerError as exc:\n"
            "    print(f'error: {exc}', file=sys.stderr)\n    sys.exit(2)\n")
    before = snapshot(ctx.dir)
    res = ctx.bench.python(["-c", code, str(saved)], ctx.dir, ctx.env)
    return res, check(res, "error", CONFIG_FILE) + changed(before, snapshot(ctx.dir))


@case("report_of_missing_directory")
def _(ctx: Ctx):
    return refused(ctx, "w2s", "report", str(ctx.dir / "no-such-runs"), contains="no-such-runs")


@case("cache_clear_without_a_cache")
def _(ctx: Ctx):
    return refused(ctx, "cache", "clear", contains="--all")


# =========================================================================== main


def quick_cases() -> list[str]:
    """The cases the test suite runs (fast, and the ones that regressed most easily)."""
    return [name for name, (_, quick) in CASES.items() if quick]


@contextmanager
def bench_in(work: Path | None, keep: bool = False) -> Iterator[Bench]:
    """A :class:`Bench` in ``work`` (default: a temporary folder, removed afterwards unless ``keep``)."""
    root = Path(tempfile.mkdtemp(prefix="overseer-bad-inputs-")) if work is None else work
    root.mkdir(parents=True, exist_ok=True)
    bench = Bench(root)
    try:
        yield bench
    finally:
        bench.close()
        if not keep and work is None:
            _make_writable(root)
            shutil.rmtree(root, ignore_errors=True)
        elif keep:
            print(f"kept {root}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the cases, print one line each and the summary JSON; exit 0 only when every case was clean."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these cases")
    parser.add_argument("--quick", action="store_true", help="run only the quick cases (the pytest subset)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    if args.list:
        for name, (_, quick) in CASES.items():
            print(f"{name}{'  (quick)' if quick else ''}")
        return 0
    names = args.only or (quick_cases() if args.quick else list(CASES))
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown case {unknown[0]!r}; see --list")
    outcomes = []
    t0 = time.perf_counter()
    with bench_in(args.work, args.keep) as bench:
        for name in names:
            outcome = bench.run_case(name)
            outcomes.append(outcome)
            if outcome.skipped:
                print(f"skipped  {name}: {outcome.skipped}", flush=True)
                continue
            status = "clean  " if outcome.clean else "UNCLEAN"
            detail = outcome.shown if outcome.clean else "; ".join(outcome.problems) + f" | {outcome.shown}"
            detail = "".join(f"[{note}] " for note in outcome.notes) + detail
            print(f"{status}  {name:42s} {outcome.seconds:6.1f}s  {detail[:300]}", flush=True)
    counted = [o for o in outcomes if not o.skipped]
    clean = sum(o.clean for o in counted)
    summary = {"cases": len(counted), "clean": clean, "share": round(clean / len(counted), 3) if counted else None,
               "skipped": len(outcomes) - len(counted), "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(summary))
    return 0 if clean == len(counted) else 1


if __name__ == "__main__":
    sys.exit(main())
