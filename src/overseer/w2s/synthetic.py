"""Synthetic weak supervisors and the noise-matched baseline: label noise with a known answer.

A weak supervisor is named by a model spec, by pure label noise, or by both:

- ``noise:P``: the true label, flipped at random with probability ``P``;
- ``noise-cc:P0,P1``: class-conditional flips, ``P0`` for true class 0 and ``P1`` for class 1;
- ``MODEL+noise:P`` / ``MODEL+noise-cc:P0,P1``: the model's soft labels, each flipped (p -> 1 - p)
  with the probability of its example's true class.

Pure noise needs no second model, so label-noise studies and pipeline checks cost one model: on
``noise:P`` the student learns from labels whose errors are independent of the input, which is
exactly what the noise-matched baseline imitates, so the two must agree within their intervals.

The noise-matched baseline (Burns et al.'s question "imitation of errors, or just fewer correct
labels?") trains one more student on the student split's ground truth, flipped at random at the
weak labels' own class-conditional error rates: the same amount of label noise, without the weak
model's systematic pattern. It alone reads that truth, in its own job, never in the student's.
Which examples are flipped is itself random, so the baseline is trained on several independent
flip draws per seed (:func:`baseline_stream`), and runs report the mean over draws and their spread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from overseer.errors import OverseerError

NOISE_FORMS = "noise:P, noise-cc:P0,P1, MODEL+noise:P or MODEL+noise-cc:P0,P1 (P in [0, 1])"
_NOISE = re.compile(r"(?:(?P<model>.*)\+)?(?P<kind>noise|noise-cc):(?P<rates>.*)")

# Random streams of the synthetic labels, so each split's flips are independent of the others'.
WEAK_LABEL_STREAM, TEST_STREAM, BASELINE_STREAM = 1, 2, 3


@dataclass(frozen=True)
class WeakSupervisor:
    """A parsed weak spec: a model (None for pure noise) and flip rates per true class (None: no noise)."""

    model: str | None
    flip: tuple[float, float] | None = None

    @property
    def synthetic(self) -> bool:
        """Whether any of the weak labels come from noise on the truth rather than from a model alone."""
        return self.flip is not None


def parse_weak(spec: str) -> WeakSupervisor:
    """Read a weak spec: a model spec, or one of the noise forms in :data:`NOISE_FORMS`."""
    match = _NOISE.fullmatch(spec.strip())
    if match is None:
        return WeakSupervisor(spec)
    model = match["model"]
    if model is not None and not model.strip():
        raise OverseerError(f"weak supervisor {spec!r} names no model before '+'; allowed: {NOISE_FORMS}")
    parts = match["rates"].split(",")
    expected = 1 if match["kind"] == "noise" else 2
    try:
        rates = [float(p) for p in parts]
    except ValueError:
        rates = []
    if len(rates) != expected or not all(0.0 <= r <= 1.0 for r in rates):
        raise OverseerError(f"weak supervisor {spec!r} has bad flip rates {match['rates']!r}; "
                            f"{match['kind']} takes {expected} number(s) in [0, 1]; allowed: {NOISE_FORMS}")
    flip = (rates[0], rates[0]) if expected == 1 else (rates[0], rates[1])
    return WeakSupervisor(model.strip() if model else None, flip)


def flip_at_random(probs: np.ndarray, truth: np.ndarray, rates: tuple[float, float],
                   rng: np.random.Generator) -> np.ndarray:
    """``probs`` with each example flipped (p -> 1 - p) with probability ``rates[its true class]``."""
    truth = np.asarray(truth).astype(int)
    chance = np.where(truth == 1, rates[1], rates[0])
    flipped = rng.random(len(truth)) < chance
    probs = np.asarray(probs, dtype=np.float64)
    return np.where(flipped, 1.0 - probs, probs)


def class_error_rates(weak_probs: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """The weak labels' error rate on each true class: (P(weak says 1 | class 0), P(weak says 0 | class 1))."""
    hard = (np.asarray(weak_probs) >= 0.5).astype(int)
    truth = np.asarray(truth).astype(int)
    rates = []
    for cls in (0, 1):
        members = truth == cls
        rates.append(float(np.mean(hard[members] != cls)) if members.any() else 0.0)
    return rates[0], rates[1]


def noise_matched_labels(truth: np.ndarray, rates: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Hard labels: ``truth`` with exactly round(rate x count) examples of each class flipped, chosen at random.

    Exact counts (rather than a coin per example) match the weak labels' error rates without
    adding sampling noise of their own.
    """
    truth = np.asarray(truth).astype(int)
    labels = truth.astype(np.float64).copy()
    for cls in (0, 1):
        members = np.flatnonzero(truth == cls)
        n_flip = int(round(rates[cls] * len(members)))
        chosen = rng.choice(members, size=n_flip, replace=False) if n_flip else members[:0]
        labels[chosen] = 1.0 - cls
    return labels


def stream(seed: int, which: int) -> np.random.Generator:
    """The random stream ``which`` of a seed (see the ``*_STREAM`` constants)."""
    return np.random.default_rng([int(seed), int(which)])


def baseline_stream(seed: int, draw: int) -> np.random.Generator:
    """The flips of the noise-matched baseline's ``draw``-th draw for ``seed``, each draw independent.

    Draw 0 is the baseline's single stream from before there were several draws, so its flips (and
    every other stream of the seed) are unchanged.
    """
    if draw == 0:
        return stream(seed, BASELINE_STREAM)
    return np.random.default_rng([int(seed), BASELINE_STREAM, int(draw)])
