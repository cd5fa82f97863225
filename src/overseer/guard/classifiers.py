"""Input, output, exchange and probe classifiers, their calibration, ensembles and the cascade.

Every classifier is a linear head on a model's hidden states read through the model layer
(:func:`overseer.models.token_features`), trained here as a logistic regression:

* **sequence** classifiers (``input``: the user's turns; ``exchange``: the turns and the response)
  read the last token's state (the mean over tokens for encoders) of an external classifier model;
* **token** classifiers score every token of the response, so a stream can be halted at the first
  token whose score reaches the threshold: ``output`` reads the response alone with an external model,
  ``probe`` reads the guarded model's own activations over the whole exchange (single layer or several
  concatenated), as Cunningham et al.'s probes do. Per-token logits are smoothed by an exponential moving
  average over tokens before the sigmoid (see docs/guard.md for how this departs from CC++).

Thresholds are calibrated on held-out benign traffic for a target false-refusal rate
(:func:`calibrate`); an ensemble averages its members' probabilities; a :class:`Cascade` screens with a
cheap first stage and lets a second stage decide what it escalates.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from overseer.errors import OverseerError

TOKEN_KINDS = ("output", "probe")
SEQUENCE_KINDS = ("input", "exchange")
CLASSIFIER_KINDS = SEQUENCE_KINDS + TOKEN_KINDS


# --------------------------------------------------------------------------- the linear head


@dataclass
class LinearHead:
    """A standardised logistic regression ``sigmoid(((x - mean) / scale) . coef + intercept)``."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, c: float = 1.0, seed: int = 0) -> LinearHead:
        """Fit on ``features`` (n, d) and 0/1 ``labels`` with balanced class weights (L2 strength ``1/c``)."""
        from sklearn.linear_model import LogisticRegression

        labels = np.asarray(labels, dtype=int)
        if len(set(labels.tolist())) < 2:
            only = labels[0] if len(labels) else "(none)"
            raise OverseerError(f"a classifier needs both classes to train; got only label {only}")
        mean = features.mean(0)
        scale = features.std(0) + 1e-6
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed)
        model.fit((features - mean) / scale, labels)
        return cls(mean.astype(np.float32), scale.astype(np.float32), model.coef_[0].astype(np.float32),
                   float(model.intercept_[0]))

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Log-odds of class 1 for each row."""
        if features.shape[0] == 0:
            return np.zeros(0, dtype=np.float64)
        return ((features - self.mean) / self.scale) @ self.coef.astype(np.float64) + self.intercept

    def save(self, path: Path) -> None:
        """Write the head as an ``.npz`` file."""
        np.savez(path, mean=self.mean, scale=self.scale, coef=self.coef, intercept=np.array([self.intercept]))

    @classmethod
    def load(cls, path: Path) -> LinearHead:
        """Read a head written by :meth:`save`."""
        with np.load(path) as z:
            return cls(z["mean"], z["scale"], z["coef"], float(z["intercept"][0]))


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    """The logistic function, stable for large magnitudes."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


def ema(logits: np.ndarray, alpha: float) -> np.ndarray:
    """Exponential moving average over tokens: ``m_t = alpha * l_t + (1 - alpha) * m_{t-1}``, ``m_0 = l_0``.

    ``alpha = 1`` leaves the logits as they are.
    """
    out = np.empty_like(np.asarray(logits, dtype=np.float64))
    for t, value in enumerate(logits):
        out[t] = value if t == 0 else alpha * value + (1 - alpha) * out[t - 1]
    return out


# --------------------------------------------------------------------------- reading models


class Reader:
    """A model whose hidden states classifiers read, loaded on first use (or given already loaded)."""

    def __init__(self, spec: str, device: str | None = None, loaded: Any | None = None):
        self.spec = spec
        self.device = device
        self._lm = loaded
        self.tokens_read = 0

    @property
    def lm(self) -> Any:
        """The loaded model."""
        if self._lm is None:
            from overseer.models import load_model

            self._lm = load_model(self.spec, device=self.device)
        return self._lm

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer."""
        return self.lm.tokenizer

    def encode(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids of ``text`` (no special tokens) and each token's character range."""
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]

    def states(self, id_lists: Sequence[Sequence[int]], layers: Sequence[int]) -> list[np.ndarray]:
        """Per-token hidden states (layers concatenated) of each id list."""
        from overseer.models import token_features

        self.tokens_read += sum(len(ids) for ids in id_lists)
        return token_features(self.lm, [list(ids) or self._empty() for ids in id_lists], layers)

    def _empty(self) -> list[int]:
        tok = self.tokenizer
        for tok_id in (tok.eos_token_id, tok.pad_token_id, 0):
            if tok_id is not None:
                return [int(tok_id)]
        return [0]

    def params(self, layers: Sequence[int]) -> int:
        """Parameters a forward pass up to the deepest of ``layers`` uses (embeddings excluded)."""
        lm = self.lm
        deepest = max(lm.num_layers + 1 + x if x < 0 else x for x in layers)
        blocks = getattr(lm.backbone, "layers", None) or getattr(getattr(lm.backbone, "encoder", None), "layer", None)
        if blocks is None:
            return sum(p.numel() for p in lm.model.parameters())
        return sum(p.numel() for block in list(blocks)[:deepest] for p in block.parameters())

    @property
    def is_causal(self) -> bool:
        """True for decoder-only models (last-token pooling)."""
        return self.lm.kind == "causal"


# --------------------------------------------------------------------------- what classifiers read


@dataclass(frozen=True)
class Exchange:
    """A conversation (no system prompt), the system prompt it ran under, and the response (may be empty)."""

    turns: tuple[Mapping[str, str], ...]
    response: str = ""
    system: str = ""

    @property
    def request_text(self) -> str:
        """The conversation as text, each turn on its own line with its role."""
        names = {"user": "User", "assistant": "Assistant"}
        return "\n".join(f"{names.get(m['role'], m['role'])}: {m['content']}" for m in self.turns)

    def chat(self) -> Any:
        """The conversation as a :class:`~overseer.models.Chat` (with the system prompt)."""
        from overseer.models import Chat

        system = [{"role": "system", "content": self.system}] if self.system else []
        return Chat.of([*system, *self.turns])


@dataclass
class TokenScores:
    """Per-token smoothed probabilities of a response and each token's character range in it."""

    scores: np.ndarray
    offsets: list[tuple[int, int]]

    @property
    def max(self) -> float:
        """The streaming statistic: the highest smoothed score (0 for an empty response)."""
        return float(self.scores.max()) if len(self.scores) else 0.0

    def halt(self, threshold: float) -> int | None:
        """Index of the first token whose score reaches ``threshold``; None when none does."""
        above = np.nonzero(self.scores >= threshold)[0]
        return int(above[0]) if len(above) else None

    def shown(self, response: str, threshold: float) -> tuple[str, int | None]:
        """The text a stream shows before halting (everything before the halting token), and the halt index."""
        t = self.halt(threshold)
        if t is None:
            return response, None
        return response[: self.offsets[t][0]], t


# --------------------------------------------------------------------------- classifiers


@dataclass
class Classifier:
    """One trained classifier: its kind, the model and layers it reads, its head and threshold."""

    kind: str
    model: str
    layers: tuple[int, ...]
    head: LinearHead | None = None
    smoothing: float = 1.0
    threshold: float = math.inf
    reader: Reader | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in CLASSIFIER_KINDS:
            raise OverseerError(f"unknown classifier kind {self.kind!r}; allowed: {', '.join(CLASSIFIER_KINDS)}")
        if not 0 < self.smoothing <= 1:
            raise OverseerError(f"smoothing must be in (0, 1] (1: none); got {self.smoothing!r}")

    @property
    def is_token(self) -> bool:
        """True for the streaming (per-token) classifiers."""
        return self.kind in TOKEN_KINDS

    def _reader(self) -> Reader:
        if self.reader is None:
            self.reader = Reader(self.model)
        return self.reader

    # -- features ---------------------------------------------------------------------------------

    def _sequence_text(self, ex: Exchange) -> str:
        if self.kind == "input":
            return ex.request_text
        return f"{ex.request_text}\nAssistant: {ex.response}"

    def sequence_features(self, items: Sequence[Exchange]) -> np.ndarray:
        """One feature row per exchange (last token, or mean for encoders)."""
        reader = self._reader()
        ids = [reader.encode(self._sequence_text(ex))[0] for ex in items]
        states = reader.states(ids, self.layers)
        pooled = [s[-1] if reader.is_causal else s.mean(0) for s in states]
        return np.stack(pooled) if pooled else np.zeros((0, 1), dtype=np.float32)

    def token_features(self, items: Sequence[Exchange]) -> tuple[list[np.ndarray], list[list[tuple[int, int]]]]:
        """Per-response-token feature rows of each exchange and the tokens' character ranges in the response."""
        from overseer.models import encode_prompt, format_chat

        reader = self._reader()
        if not reader.is_causal:
            raise OverseerError(f"the {self.kind} classifier scores every prefix of a reply, so it needs a causal "
                                f"model; {self.model!r} is an encoder (use it for the input and exchange classifiers "
                                "only)")
        id_lists, offsets, starts = [], [], []
        for ex in items:
            ids, offs = reader.encode(ex.response)
            prefix = encode_prompt(reader.tokenizer, format_chat(reader.tokenizer, ex.chat())) \
                if self.kind == "probe" else []
            id_lists.append(prefix + ids)
            offsets.append(offs)
            starts.append(len(prefix))
        states = reader.states(id_lists, self.layers)
        rows = []
        for s, start, offs in zip(states, starts, offsets, strict=True):
            rows.append(s[start:start + len(offs)])
        return rows, offsets

    # -- training ---------------------------------------------------------------------------------

    def fit(self, items: Sequence[Exchange], labels: Sequence[int], spans: Sequence[Sequence[tuple[int, int]]] = (),
            c: float = 1.0, seed: int = 0) -> Classifier:
        """Train the head: sequence labels, or for token classifiers a label per token from restricted ``spans``."""
        if self.is_token:
            rows, offsets = self.token_features(items)
            feats, ys = [], []
            for r, offs, span in zip(rows, offsets, spans or [()] * len(items), strict=True):
                feats.append(r)
                ys += [int(any(a < e and s < b for a, b in span)) for s, e in offs]
            self.head = LinearHead.fit(np.concatenate(feats), np.array(ys), c, seed)
        else:
            self.head = LinearHead.fit(self.sequence_features(items), np.asarray(labels), c, seed)
        return self

    # -- scoring ----------------------------------------------------------------------------------

    def _need_head(self) -> LinearHead:
        if self.head is None:
            raise OverseerError(f"the {self.kind} classifier is not trained")
        return self.head

    def sequence_scores(self, items: Sequence[Exchange]) -> np.ndarray:
        """Probability per exchange (token classifiers: the highest smoothed per-token score)."""
        if self.is_token:
            return np.array([t.max for t in self.token_scores(items)])
        return sigmoid(self._need_head().logits(self.sequence_features(items)))

    def token_scores(self, items: Sequence[Exchange]) -> list[TokenScores]:
        """Smoothed per-token probabilities of each response."""
        head = self._need_head()
        rows, offsets = self.token_features(items)
        return [TokenScores(sigmoid(ema(head.logits(r), self.smoothing)), offs) for r, offs in zip(rows, offsets,
                                                                                                   strict=True)]

    def reads_generation(self, inner: Any) -> bool:
        """True when this probe can read its states off ``inner``'s generation pass (the same local model)."""
        from overseer.models import HFBackend

        if self.kind != "probe" or not isinstance(inner, HFBackend) or inner.model_name != self.model:
            return False
        depth = inner.loaded.model.config.num_hidden_layers
        return all((x if x >= 0 else depth + 1 + x) < depth for x in self.layers)  # the last layer is normalised

    def scores_from_generation(self, generations: Sequence[Any], tokenizer: Any) -> list[TokenScores]:
        """Per-token scores from the hidden states a generation pass returned (:attr:`Generation.hidden`)."""
        head = self._need_head()
        out = []
        for gen in generations:
            states = gen.hidden if gen.hidden is not None and len(gen.hidden) else np.zeros((0, len(head.coef)))
            out.append(TokenScores(sigmoid(ema(head.logits(states), self.smoothing)),
                                   token_offsets(tokenizer, gen.token_ids)[: len(states)]))
        return out

    def to_json(self) -> dict[str, Any]:
        """What :meth:`GuardPolicy.save` records about it."""
        return {"kind": self.kind, "model": self.model, "layers": list(self.layers), "smoothing": self.smoothing,
                "threshold": _finite(self.threshold)}


def token_offsets(tokenizer: Any, ids: Sequence[int]) -> list[tuple[int, int]]:
    """Each generated token's character range in the decoded text (decoding every prefix, as a stream shows it)."""
    offsets, end = [], 0
    for t in range(len(ids)):
        new_end = len(tokenizer.decode(list(ids[: t + 1]), skip_special_tokens=True))
        offsets.append((end, max(end, new_end)))
        end = max(end, new_end)
    return offsets


def _finite(x: float) -> float | str:
    """A threshold as JSON stores it (infinities as strings)."""
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


# --------------------------------------------------------------------------- calibration and combinations


def calibrate(benign_scores: Sequence[float], target_rate: float) -> float:
    """The lowest threshold that flags at most ``target_rate`` of ``benign_scores`` (flag: score >= threshold).

    With ``n`` scores at most ``floor(target_rate * n)`` are flagged (fewer when scores tie); 0 gives a
    threshold just above the highest benign score, 1 flags everything (``-inf``).

    >>> calibrate([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], 0.2) > 0.8
    True
    """
    if not 0 <= target_rate <= 1:
        raise OverseerError(f"target rate must be in [0, 1]; got {target_rate!r}")
    scores = np.sort(np.asarray(benign_scores, dtype=np.float64))[::-1]
    if len(scores) == 0:
        raise OverseerError("calibration needs benign scores; got none")
    k = int(math.floor(target_rate * len(scores) + 1e-9))
    if k >= len(scores):
        return -math.inf
    return float(np.nextafter(scores[k], math.inf))


def escalation_threshold(benign_scores: Sequence[float], rate: float) -> float:
    """The stage-1 score at or above which a cascade escalates: ``rate`` of benign traffic escalated.

    Rate 0 escalates nothing (``inf``) and rate 1 everything (``-inf``), whatever the scores.
    """
    if rate <= 0:
        return math.inf
    if rate >= 1:
        return -math.inf
    return calibrate(benign_scores, rate)


def cascade_decisions(stage1: np.ndarray, threshold1: float, stage2: np.ndarray, threshold2: float,
                      escalate_at: float) -> tuple[np.ndarray, np.ndarray]:
    """Block decisions of a two-stage cascade, and which items were escalated.

    An item whose stage-1 score reaches ``escalate_at`` is decided by stage 2 (``stage2 >= threshold2``);
    the others by stage 1 (``stage1 >= threshold1``). With ``escalate_at = inf`` (escalation rate 0) the
    cascade is stage 1 exactly; with ``-inf`` (rate 1) it is stage 2 exactly; with ``escalate_at`` at or
    below ``threshold1`` stage 1 only screens and stage 2 makes every block.
    """
    escalated = np.asarray(stage1) >= escalate_at
    blocked = np.where(escalated, np.asarray(stage2) >= threshold2, np.asarray(stage1) >= threshold1)
    return blocked, escalated


@dataclass
class Cascade:
    """Two stages by name, the escalation rate it was set for and the stage-1 escalation threshold."""

    stage1: str
    stage2: str
    rate: float
    escalate_at: float = math.inf

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"stage1": self.stage1, "stage2": self.stage2, "rate": self.rate,
                "escalate_at": _finite(self.escalate_at)}


# --------------------------------------------------------------------------- the policy


DEFENCES = ("none", "input", "output", "exchange", "probe", "ensemble", "cascade")
POLICY_FILE = "policy.json"


@dataclass
class GuardPolicy:
    """Trained classifiers, their thresholds, the ensemble and cascade, and the guarded model; saved as a folder.

    ``defence`` is what :meth:`decide` and the ``guard:`` backend apply by default (one of :data:`DEFENCES`).
    """

    guarded_model: str
    system_prompt: str
    refusal: str
    classifiers: dict[str, Classifier]
    ensemble: tuple[str, ...] = ()
    ensemble_threshold: float = math.inf
    cascade: Cascade | None = None
    defence: str = "cascade"
    constitution: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Write ``policy.json`` and each head's ``<name>.npz`` into ``path`` (created)."""
        from overseer._storage import atomic_directory, write_json

        path = Path(path)
        with atomic_directory(path) as tmp:
            for name, clf in self.classifiers.items():
                if clf.head is not None:
                    clf.head.save(tmp / f"{name}.npz")
            write_json(tmp / POLICY_FILE, {
                "format": "overseer.GuardPolicy", "version": 1, "guarded_model": self.guarded_model,
                "system_prompt": self.system_prompt, "refusal": self.refusal, "constitution": self.constitution,
                "classifiers": {n: c.to_json() for n, c in self.classifiers.items()},
                "ensemble": list(self.ensemble), "ensemble_threshold": _finite(self.ensemble_threshold),
                "cascade": self.cascade.to_json() if self.cascade else None, "defence": self.defence,
                "extra": self.extra,
            })
        return path

    @classmethod
    def load(cls, path: str | Path) -> GuardPolicy:
        """Read a folder written by :meth:`save` (models load when first used)."""
        path = Path(path).expanduser()
        file = path / POLICY_FILE
        if not file.is_file():
            raise OverseerError(f"{str(path)!r} is not a guard policy folder (no {POLICY_FILE}); give the policy "
                                "folder of a guard run (runs/guard-<hash>/policy)")
        meta = json.loads(file.read_text())
        if meta.get("format") != "overseer.GuardPolicy":
            raise OverseerError(f"{file} is not a guard policy (format {meta.get('format')!r})")
        classifiers = {}
        for name, spec in meta["classifiers"].items():
            head_file = path / f"{name}.npz"
            classifiers[name] = Classifier(spec["kind"], spec["model"], tuple(spec["layers"]),
                                           LinearHead.load(head_file) if head_file.is_file() else None,
                                           float(spec["smoothing"]), float(spec["threshold"]))
        cascade = meta.get("cascade")
        return cls(meta["guarded_model"], meta["system_prompt"], meta["refusal"], classifiers,
                   tuple(meta.get("ensemble") or ()), float(meta.get("ensemble_threshold", "inf")),
                   Cascade(cascade["stage1"], cascade["stage2"], float(cascade["rate"]),
                           float(cascade["escalate_at"])) if cascade else None,
                   meta.get("defence", "cascade"), meta.get("constitution", ""), meta.get("extra") or {})

    def share_readers(self, loaded: Mapping[str, Any] | None = None, device: str | None = None) -> None:
        """Give classifiers that read the same model one :class:`Reader` (one copy of the weights).

        ``loaded`` maps model specs to models already in memory (e.g. the guarded model's backend).
        """
        readers: dict[str, Reader] = {}
        for clf in self.classifiers.values():
            if clf.model not in readers:
                readers[clf.model] = Reader(clf.model, device, (loaded or {}).get(clf.model))
            clf.reader = readers[clf.model]
