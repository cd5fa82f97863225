"""Progress of long steps: a bar on a terminal, timed plain lines (total, rate, ETA) in files and CI logs."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from overseer import _progress
from overseer._progress import INTERVAL_ENV, format_duration, interval_s, progress

LINE = re.compile(r"^\[(?P<desc>[^\]]+)\] (?P<n>[\d,]+)/(?P<total>[\d,]+) (?P<unit>\w+) \((?P<pct>\d+)%\), "
                  r"(?:(?P<rate>[\d.,]+) \w+/s, )?elapsed \S+, "
                  r"ETA (?P<eta>\d+h\d\dm|\d+m\d\ds|\d+s|unknown \(starting\))$")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Clock:
    """A fake ``time.monotonic`` for the progress module, so rates and ETAs are exact."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1000.0
        monkeypatch.setattr(_progress.time, "monotonic", lambda: self.now)


def test_off_a_terminal_lines_carry_the_total_the_rate_and_an_eta() -> None:
    out = io.StringIO()
    with progress(400, "activations", "texts", stream=out, interval=0.02) as bar:
        for _ in range(20):
            time.sleep(0.01)
            bar.update(20)
    lines = out.getvalue().splitlines()
    assert len(lines) >= 3, lines
    *running, last = lines
    parsed = [LINE.match(line) for line in running]
    assert all(parsed), running
    assert {m["total"] for m in parsed} == {"400"} and {m["unit"] for m in parsed} == {"texts"}
    assert any(m["eta"][0].isdigit() and m["rate"] for m in parsed), running  # a real estimate once work is done
    assert re.fullmatch(r"\[activations\] 400/400 texts in \d+s \([\d.,]+ texts/s\)", last), last


def test_the_eta_ignores_a_slow_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a model for 100 s, then 10 texts/s: the estimate is 10 texts/s, not 200 texts in 120 s."""
    clock = _Clock(monkeypatch)
    out = io.StringIO()
    bar = _progress.Progress(1000, "features", "texts", "lines", out, interval=3600, leave=False, delay_s=0)
    try:
        assert bar.line().endswith("ETA unknown (starting)")
        clock.now += 100
        bar.update(10)
        for _ in range(19):
            clock.now += 1
            bar.update(10)
        assert bar.line() == "[features] 200/1,000 texts (20%), 10 texts/s, elapsed 1m59s, ETA 1m20s"
        clock.now += 30  # nothing done for 30 s: the rate falls and the ETA grows
        assert bar.line().endswith("3.88 texts/s, elapsed 2m29s, ETA 3m26s")
    finally:
        bar.close()


def test_work_found_done_at_once_does_not_inflate_the_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock(monkeypatch)
    bar = _progress.Progress(2000, "activations", "texts", "lines", io.StringIO(), 3600, False, 0)
    try:
        bar.update(1000)  # cached activations, read in no time
        for _ in range(10):
            clock.now += 1
            bar.update(5)
        assert "1,050/2,000 texts (52%), 5 texts/s" in bar.line() and bar.line().endswith("ETA 3m10s")
    finally:
        bar.close()


def test_on_a_terminal_a_tqdm_bar_shows_the_total_and_the_remaining_time() -> None:
    out = _Terminal()
    with progress(300, "seed 0: activations", "texts", stream=out, delay_s=0, leave=True) as bar:
        for _ in range(3):
            time.sleep(0.02)
            bar.update(100.0)  # floats (weighted work) print as whole numbers
    shown = out.getvalue()
    assert "seed 0: activations" in shown and "300/300 texts" in shown
    assert re.search(r"\[\d\d:\d\d<\d\d:\d\d, ", shown), shown  # elapsed < remaining
    assert not re.search(r"^\[", shown, re.M)  # no plain lines on a terminal


def test_counting_past_the_total_raises_it_instead_of_showing_over_100_percent() -> None:
    bar = _progress.Progress(10, "x", "items", "lines", io.StringIO(), 3600, False, 0)
    bar.update(15)
    assert bar.total == 15 and "15/15 items (100%)" in bar.line()
    bar.close()


def test_disabled_progress_writes_nothing() -> None:
    for stream in (io.StringIO(), _Terminal()):
        with progress(100, "x", "items", enabled=False, stream=stream, interval=0.01) as bar:
            time.sleep(0.05)
            bar.update(100)
        assert stream.getvalue() == ""


def test_a_failed_step_writes_no_done_line() -> None:
    out = io.StringIO()
    with pytest.raises(RuntimeError), progress(100, "x", "items", stream=out, interval=0.01) as bar:
        bar.update(10)
        time.sleep(0.05)
        raise RuntimeError("boom")
    assert out.getvalue() and all(LINE.match(line) for line in out.getvalue().splitlines())


def test_interval_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(INTERVAL_ENV, raising=False)
    assert interval_s() == 30.0
    monkeypatch.setenv(INTERVAL_ENV, "0.2")
    assert interval_s() == 0.2
    monkeypatch.setenv(INTERVAL_ENV, "soon")
    assert interval_s() == 30.0
    assert capsys.readouterr().err.strip() == (
        "warning: OVERSEER_PROGRESS_INTERVAL='soon' is not a positive number of seconds; using 30"
    )


def test_durations_are_short() -> None:
    assert [format_duration(s) for s in (0.4, 59, 60, 332, 3599, 3600, 7500)] == [
        "0s", "59s", "1m00s", "5m32s", "59m59s", "1h00m", "2h05m"
    ]


def test_library_bars_are_silenced_without_importing_the_libraries() -> None:
    """The CLI turns off transformers' and huggingface_hub's bars at start, yet imports neither there."""
    code = (
        "import sys\n"
        "from overseer.cli.main import build_parser\n"
        "from overseer._progress import silence_library_bars\n"
        "build_parser(); silence_library_bars()\n"
        "assert not {'transformers', 'huggingface_hub', 'datasets'} & set(sys.modules), 'imported at start'\n"
        "from transformers.utils import logging\n"
        "from huggingface_hub.utils import are_progress_bars_disabled\n"
        "from datasets.utils.logging import is_progress_bar_enabled\n"
        "print(logging.is_progress_bar_enabled(), are_progress_bars_disabled(), is_progress_bar_enabled())\n"
    )
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True", "False"]


def test_library_bars_already_imported_are_silenced(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars
    from transformers.utils import logging

    hub_was_on, transformers_was_on = not are_progress_bars_disabled(), logging.is_progress_bar_enabled()
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    try:
        _progress.silence_library_bars()
        assert not logging.is_progress_bar_enabled() and are_progress_bars_disabled()
    finally:  # leave the switches as the other tests found them
        if hub_was_on:
            enable_progress_bars()
        if transformers_was_on:
            logging.enable_progress_bar()


def test_the_gguf_conversion_bar_follows_the_library_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    """transformers draws "Converting and de-quantizing GGUF tensors" with tqdm itself; loading silences it."""
    import importlib

    gguf = importlib.import_module("transformers.modeling_gguf_pytorch_utils")
    original = gguf.tqdm
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    with _progress.quiet_module_bars(gguf.__name__):
        assert gguf.tqdm([1, 2], file=io.StringIO()).disable
    assert gguf.tqdm is original
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "0")  # the user asked for library bars
    with _progress.quiet_module_bars(gguf.__name__):
        assert gguf.tqdm is original


def test_a_cold_w2s_run_logged_to_a_file_shows_progress_with_total_and_eta(
    tiny_encoder: Path, tiny_causal: Path, tmp_path: Path
) -> None:
    """`overseer w2s run > log.txt 2>&1` on a cold cache: progress lines with the run's total and an ETA."""
    log = tmp_path / "log.txt"
    env = {**os.environ, INTERVAL_ENV: "0.05", "OVERSEER_ACTIVATION_CACHE_DIR": str(tmp_path / "cold-cache")}
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    argv = [sys.executable, "-m", "overseer", "w2s", "run", "--weak", str(tiny_encoder), "--strong", str(tiny_causal),
            "--data-limit", "600", "--n-train", "120", "--n-test", "100", "--epochs", "2", "--n-bootstrap", "50",
            "--batch-size", "2", "--seeds", "0", "--out", str(tmp_path / "runs")]
    with log.open("w") as fh:
        done = subprocess.run(argv, env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=600)
    text = log.read_text()
    assert done.returncode == 0, text
    lines = [m for m in map(LINE.match, text.splitlines()) if m]
    # weak-train 120 + weak-label 120 + test 100 texts, through each of the two models, each embedded once
    assert lines and {m["total"] for m in lines} == {"680"}, text
    assert any(m["eta"][0].isdigit() for m in lines), text
    assert re.search(r"^\[activations\] 680/680 texts in \d+", text, re.M), text
    assert "\r" not in text and "Loading weights" not in text  # no terminal bars from us or from transformers
    assert text.splitlines()[-1].startswith("run: ")
