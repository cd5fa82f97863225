"""One progress display for every long step: a bar on a terminal, a plain line every ~30 s otherwise.

``with progress(total, "activations", "texts") as bar: ... bar.update(n)`` shows, where stderr is a
terminal, a tqdm bar with the total, the rate and the remaining time (shown only once the step has
lasted a second, so quick steps leave no trace). Where stderr is a file, a pipe or a CI log, a tqdm
bar would print nothing useful (tqdm turns itself off) or a wall of carriage returns, so a
background thread writes one plain line instead every ``OVERSEER_PROGRESS_INTERVAL`` seconds
(default 30)::

    [seed 0: activations] 364/4000 texts (9%), 10.9 texts/s, elapsed 36s, ETA 5m32s

and, if it wrote any, a last line when the step ends. ``enabled=False`` (``--no-progress``) shows
nothing. The rate is measured over the last minute or so, so that work found already done (cached
activations count at once) and slow starts (loading a model) do not distort the estimate for long.

:func:`silence_library_bars` turns off the bars that transformers and huggingface_hub draw on their
own ("Loading weights", "Writing model shards", downloads), without importing either library.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

INTERVAL_ENV = "OVERSEER_PROGRESS_INTERVAL"
"""Environment variable: seconds between progress lines when stderr is not a terminal."""
DEFAULT_INTERVAL_S = 30.0
_RATE_WINDOW_S = 60.0  # the rate is measured over at least this long (and at least 3 intervals)
_SMOOTH_BAR = "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f}{unit} [{elapsed}<{remaining}, {rate_fmt}]"


def interval_s() -> float:
    """Seconds between progress lines off a terminal: ``$OVERSEER_PROGRESS_INTERVAL``, else 30.

    A value that is not a positive number is ignored, with one warning line (a display setting
    never stops a run).
    """
    raw = os.environ.get(INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        print(f"warning: {INTERVAL_ENV}={raw!r} is not a positive number of seconds; using "
              f"{DEFAULT_INTERVAL_S:g}", file=sys.stderr, flush=True)
        return DEFAULT_INTERVAL_S
    return value


def format_duration(seconds: float) -> str:
    """``12s``, ``5m32s``, ``2h05m``: short enough for a progress line.

    >>> format_duration(332), format_duration(7500), format_duration(9.4)
    ('5m32s', '2h05m', '9s')
    """
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _count(x: float) -> str:
    return f"{x:,.0f}"


def _rate(x: float) -> str:
    return f"{x:.3g}" if x < 100 else f"{x:,.0f}"


class Progress:
    """A running step's progress: ``update(n)`` as work is done; what is shown depends on the mode.

    Use :func:`progress` to get one. ``n`` and ``total`` may be floats (weighted work units).
    Counting past ``total`` raises the total, so an underestimated total never shows over 100%.
    """

    def __init__(self, total: float | None, desc: str, unit: str, mode: str, stream: IO[str], interval: float,
                 leave: bool, delay_s: float):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.mode = mode
        self.n: float = 0
        self._stream = stream
        self._interval = interval
        self._start = time.monotonic()
        self._samples: deque[tuple[float, float]] = deque()  # (time, n) at updates, over the rate window
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._lines = 0
        self._bar: Any = None
        self._thread: threading.Thread | None = None
        if mode == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=f" {unit}", file=stream, leave=leave, delay=delay_s,
                             dynamic_ncols=True, bar_format=_SMOOTH_BAR if total is not None else None)
        elif mode == "lines":
            self._thread = threading.Thread(target=self._heartbeat, name="overseer-progress", daemon=True)
            self._thread.start()

    # -- what callers use

    def update(self, n: float = 1) -> None:
        """Count ``n`` more units of work done."""
        with self._lock:
            self.n += n
            if self.total is not None and self.n > self.total:
                self.total = self.n
                if self._bar is not None:
                    self._bar.total = self.n
            if self.mode == "lines":
                now = time.monotonic()
                self._samples.append((now, self.n))
                window = max(_RATE_WINDOW_S, 3 * self._interval)
                while len(self._samples) > 2 and self._samples[1][0] <= now - window:
                    self._samples.popleft()
        if self._bar is not None:
            self._bar.update(n)

    def set_description(self, desc: str) -> None:
        """Say what is being done now (``seed 1: activations``)."""
        self.desc = desc
        if self._bar is not None:
            self._bar.set_description(desc)

    def close(self, failed: bool | None = None) -> None:
        """Stop showing progress; off a terminal, end with a last line if any line was written.

        Args:
            failed: the step ended with an error, so no "done" line is written (default: whether an
                exception is propagating, as in a ``finally`` block).
        """
        if failed is None:
            failed = sys.exc_info()[0] is not None
        if self._bar is not None:
            self._bar.close()
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            if self._lines and not failed:
                elapsed = time.monotonic() - self._start
                rate = self.n / elapsed if elapsed > 0 else 0.0
                self._write(f"[{self.desc}] {self._done()} {self.unit} in {format_duration(elapsed)} "
                            f"({_rate(rate)} {self.unit}/s)")

    # -- lines mode

    def _done(self) -> str:
        return _count(self.n) if self.total is None else f"{_count(self.n)}/{_count(self.total)}"

    def line(self) -> str:
        """The progress line as it would be written now."""
        with self._lock:
            n, total = self.n, self.total
            now = time.monotonic()
            samples = len(self._samples)
            # From the first update on, so that a slow start (loading a model) and work found done at
            # once do not count; with one update only, the time since the start is all there is.
            since, n_then = self._samples[0] if samples >= 2 else (self._start, 0.0)
        rate = (n - n_then) / (now - since) if samples and now > since and n > n_then else None
        parts = [f"[{self.desc}] {self._done()} {self.unit}" + (f" ({n / total:.0%})" if total else "")]
        if rate is not None:
            parts.append(f"{_rate(rate)} {self.unit}/s")
        parts.append(f"elapsed {format_duration(now - self._start)}")
        if total is not None:
            parts.append(f"ETA {format_duration((total - n) / rate)}" if rate else "ETA unknown (starting)")
        return ", ".join(parts)

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text + "\n")
            self._stream.flush()
        except (OSError, ValueError):  # a closed or full stream: progress is never worth failing for
            pass

    def _heartbeat(self) -> None:
        while not self._stop.wait(self._interval):
            self._write(self.line())
            self._lines += 1


@contextmanager
def progress(total: float | None, desc: str, unit: str = "items", enabled: bool = True, *,
             stream: IO[str] | None = None, interval: float | None = None, leave: bool = False,
             delay_s: float = 1.0) -> Iterator[Progress]:
    """Show the progress of one step while the block runs.

    Args:
        total: units of work the step will do (None: unknown, then no percentage or ETA).
        desc: what the step is, shown first (``activations``).
        unit: what is counted, plural (``texts``).
        enabled: False shows nothing (``--no-progress``).
        stream: where to show it (default: stderr at the time of the call).
        interval: seconds between lines off a terminal (default: :func:`interval_s`).
        leave: on a terminal, keep the finished bar on screen.
        delay_s: on a terminal, show the bar only once the step has lasted this long.

    Yields:
        The :class:`Progress` to ``update``.
    """
    bar = start_progress(total, desc, unit, enabled, stream=stream, interval=interval, leave=leave, delay_s=delay_s)
    try:
        yield bar
    except BaseException:
        bar.close(failed=True)
        raise
    bar.close(failed=False)


def start_progress(total: float | None, desc: str, unit: str = "items", enabled: bool = True, *,
                   stream: IO[str] | None = None, interval: float | None = None, leave: bool = False,
                   delay_s: float = 1.0) -> Progress:
    """Start showing progress as :func:`progress` does; the caller must :meth:`~Progress.close` it."""
    stream = stream if stream is not None else sys.stderr
    if not enabled:
        mode = "off"
    else:
        try:
            mode = "bar" if stream.isatty() else "lines"
        except (AttributeError, ValueError):
            mode = "lines"
    return Progress(total, desc, unit, mode, stream, interval if interval is not None else interval_s(), leave,
                    delay_s)


def _bars_silenced() -> bool:
    return os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


@contextmanager
def quiet_module_bars(module: str) -> Iterator[None]:
    """Within the block, silence the tqdm bars ``module`` draws with its own ``tqdm`` (ignoring both switches).

    transformers' GGUF conversion ("Converting and de-quantizing GGUF tensors") is one: it calls
    ``tqdm.auto.tqdm`` directly. Does nothing unless :func:`silence_library_bars` (or the user's
    ``HF_HUB_DISABLE_PROGRESS_BARS``) turned library bars off.
    """
    import importlib

    mod = importlib.import_module(module) if _bars_silenced() else None
    original = getattr(mod, "tqdm", None)
    if original is None:
        yield
        return

    def quiet(*args: Any, **kwargs: Any) -> Any:
        return original(*args, **{**kwargs, "disable": True})

    mod.tqdm = quiet  # type: ignore[union-attr]
    try:
        yield
    finally:
        mod.tqdm = original  # type: ignore[union-attr]


def silence_library_bars() -> None:
    """Turn off the progress bars of transformers, huggingface_hub and datasets, importing none of them.

    The first two read ``HF_HUB_DISABLE_PROGRESS_BARS`` when they are imported, datasets
    ``HF_DATASETS_DISABLE_PROGRESS_BARS`` (its map/filter bars: TRL's trainers prepare data with
    them); where one is already imported, its own switch is used too. A user who set a variable
    keeps their choice.
    """
    if os.environ.get("HF_DATASETS_DISABLE_PROGRESS_BARS") is None:
        os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
        if "datasets" in sys.modules:
            from datasets.utils.logging import disable_progress_bar

            disable_progress_bar()
    if os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") is not None:
        return
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
