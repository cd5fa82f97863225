r"""Language-model scoring and generation shared by every pillar: chat prompts, option log-probs, greedy text.

Three things every prompting experiment needs, done once and tested once:

* :func:`format_chat` renders a conversation through the model's own chat template and appends a
  prefilled start of the assistant's answer ("The answer is"); base models without a template get the
  ``Human: ...\n\nAssistant: ...`` format of Anthropic's dialogue models (Ganguli et al. 2023).
* :func:`score_options` returns, for each prompt, the summed log-probability and token count of each
  answer option that could follow it. The prompt is run once per item (batched over items, left-padded),
  its key/value cache is shared by all options of the item, and the prefix common to a whole batch (system
  prompt, the question's fixed wording) runs once per batch. Callers length-normalise with the token
  counts when options differ in length.
* :func:`generate` completes prompts, greedily or sampled (:class:`~overseer.models.GenerateConfig`),
  in length-sorted, left-padded batches, returning token ids and log-probabilities with the text.

:class:`HFBackend` is the ``hf`` :class:`~overseer.models.Backend`: these functions behind the one
interface that OpenAI-compatible servers and the mock backend also implement.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from overseer.errors import OverseerError
from overseer.models._backend import CAPABILITIES, Backend, CapabilityError, backend
from overseer.models._generate import GenerateConfig, Generation, cut_at_stop

if TYPE_CHECKING:
    import torch

    from overseer.models._load import LoadedModel

HUMAN_ASSISTANT = "human_assistant"
ROLES = ("system", "user", "assistant", "tool")
_MIN_SHARED_PREFIX = 4  # shorter shared prefixes are not worth a separate forward pass


@dataclass(frozen=True)
class Chat:
    """A conversation plus the prefilled start of the assistant's next turn.

    ``messages`` are ``{"role": ..., "content": str}`` dicts with a role in :data:`ROLES` (``system``,
    ``user``, ``assistant``, ``tool``; a tool message may carry ``tool_call_id`` and ``name``). The
    model is asked to continue ``assistant_prefix`` (e.g. ``"The answer is"``) as the assistant.
    """

    messages: tuple[Mapping[str, Any], ...]
    assistant_prefix: str = ""

    def __post_init__(self) -> None:
        for msg in self.messages:
            if msg.get("role") not in ROLES:
                raise OverseerError(f"unknown chat role {msg.get('role')!r}; allowed: {', '.join(ROLES)}")

    @classmethod
    def of(cls, messages: Sequence[Mapping[str, Any]], assistant_prefix: str = "") -> Chat:
        """Build from any sequence of message dicts (copied, so later edits cannot leak in)."""
        return cls(tuple(dict(m) for m in messages), assistant_prefix)

    @classmethod
    def user(cls, text: str, system: str | None = None, assistant_prefix: str = "") -> Chat:
        """A one-question conversation, with an optional system message."""
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
        return cls.of(messages, assistant_prefix)


@dataclass(frozen=True)
class OptionScores:
    """Log-probabilities of the answer options that follow one prompt.

    ``logprobs[k]`` is the summed natural-log probability of option ``k``'s tokens and
    ``num_tokens[k]`` their count. ``error`` is set (and the lists empty) when the item could not be
    scored, so callers record it as failed instead of dropping it.
    """

    logprobs: tuple[float, ...] = ()
    num_tokens: tuple[int, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the item was scored."""
        return self.error is None

    def normalized(self, how: str = "mean") -> list[float]:
        """Per-option scores for choosing: ``sum`` (raw) or ``mean`` (per token, length-fair)."""
        if how == "sum":
            return list(self.logprobs)
        if how == "mean":
            return [lp / max(n, 1) for lp, n in zip(self.logprobs, self.num_tokens, strict=True)]
        raise OverseerError(f"unknown normalisation {how!r}; allowed: mean, sum")


LMBackend = Backend
"""Former name of :class:`~overseer.models.Backend`, kept for callers of the old protocol."""


# --------------------------------------------------------------------------- chat formatting


def has_chat_template(tokenizer: Any) -> bool:
    """True when the tokenizer carries a chat template (instruction-tuned models usually do)."""
    return bool(getattr(tokenizer, "chat_template", None))


def human_assistant(messages: Sequence[Mapping[str, str]], assistant_prefix: str = "") -> str:
    r"""The paper's dialogue format: ``Human: ...\n\nAssistant: ...``, ending in an open assistant turn.

    >>> human_assistant([{"role": "user", "content": "Hi?"}], "The answer is")
    'Human: Hi?\n\nAssistant: The answer is'
    """
    names = {"user": "Human", "assistant": "Assistant", "system": "System", "tool": "Tool"}
    turns = []
    for msg in messages:
        role = msg.get("role", "")
        if role not in names:
            raise OverseerError(f"unknown chat role {role!r}; allowed: {', '.join(names)}")
        turns.append(f"{names[role]}: {msg['content']}")
    turns.append("Assistant:" + (f" {assistant_prefix}" if assistant_prefix else ""))
    return "\n\n".join(turns)


def format_chat(tokenizer: Any, chat: Chat, template: str | None = None) -> str:
    """Render ``chat`` through the tokenizer's chat template, or the Human/Assistant format without one.

    ``template="human_assistant"`` forces the paper's format even for models with a template.
    """
    if template == HUMAN_ASSISTANT or not has_chat_template(tokenizer):
        return human_assistant(chat.messages, chat.assistant_prefix)
    text = tokenizer.apply_chat_template(
        [dict(m) for m in chat.messages], tokenize=False, add_generation_prompt=True
    )
    return str(text) + chat.assistant_prefix


# --------------------------------------------------------------------------- tokenization helpers


def encode_prompt(tokenizer: Any, text: str) -> list[int]:
    """Token ids of a rendered prompt; add BOS only if the template did not already write it."""
    bos = getattr(tokenizer, "bos_token", None)
    add_special = not (bos and text.startswith(bos))
    return list(tokenizer(text, add_special_tokens=add_special)["input_ids"])


def _encode_option(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _max_positions(model: Any) -> int | None:
    value = getattr(model.config, "max_position_embeddings", None)
    return int(value) if value else None


def _accepts(model: Any, argument: str) -> bool:
    try:
        return argument in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def _left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
    return ids, mask


def _right_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


def _positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that start at 0 on each row's first real token (left padding shifts nothing)."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def _pad_id(tokenizer: Any) -> int:
    for tok_id in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if tok_id is not None:
            return int(tok_id)
    return 0


# --------------------------------------------------------------------------- scoring


def _common_prefix(rows: Sequence[Sequence[int]]) -> int:
    """Length of the token prefix shared by every row, leaving each row at least one token of its own."""
    shortest = min(len(r) for r in rows)
    n = 0
    while n < shortest - 1 and all(r[n] == rows[0][n] for r in rows):
        n += 1
    return n


def _cache_of(output: Any) -> Any:
    """The key/value cache of a forward pass, under its current name (``cache``) or its older one."""
    cache = getattr(output, "cache", None) if "cache" in output else None
    return cache if cache is not None else output["past_key_values"]


def _score_batch_shared(
    model: Any, prompts: list[list[int]], options: list[list[list[int]]], pad_id: int
) -> list[tuple[list[float], list[int]]]:
    """Score one batch, computing every shared piece once.

    1. the prefix common to all prompts of the batch (system prompt, instructions) runs once, batch 1;
    2. the rest of each prompt runs once, left-padded, on a copy of that cache;
    3. the options of every item run on copies of their item's cache (skipped for one-token options).
    """
    import torch

    device = next(model.parameters()).device
    kwargs: dict[str, Any] = {"logits_to_keep": 1} if _accepts(model, "logits_to_keep") else {}
    cache_arg = "cache" if _accepts(model, "cache") else "past_key_values"  # transformers >= 5.2x renamed it
    shared = _common_prefix(prompts) if len(prompts) > 1 else 0
    cache = None
    if shared >= _MIN_SHARED_PREFIX:
        head = torch.tensor([prompts[0][:shared]], dtype=torch.long, device=device)
        cache = _cache_of(model(input_ids=head, use_cache=True, **kwargs))
        cache.reorder_cache(torch.zeros(len(prompts), dtype=torch.long, device=device))
    else:
        shared = 0
    ids, rest_mask = _left_pad([p[shared:] for p in prompts], pad_id)
    ids, rest_mask = ids.to(device), rest_mask.to(device)
    mask = torch.cat([torch.ones(len(prompts), shared, dtype=torch.long, device=device), rest_mask], dim=1)
    pos = shared + _positions(rest_mask)  # left padding sits between the shared prefix and the rest
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, **{cache_arg: cache}, **kwargs)
    # first option token is predicted by the prompt's last position: [B, V]
    first = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)

    rows = [(i, opt) for i, item_opts in enumerate(options) for opt in item_opts]
    sums = [float(first[i, opt[0]]) for i, opt in rows]
    if any(len(opt) > 1 for _, opt in rows):
        cache = _cache_of(out)
        index = torch.tensor([i for i, _ in rows], dtype=torch.long, device=device)
        cache.reorder_cache(index)  # one cache row per option, copied from its item's prompt
        opt_ids, opt_mask = _right_pad([opt for _, opt in rows], pad_id)
        opt_ids, opt_mask = opt_ids.to(device), opt_mask.to(device)
        full_mask = torch.cat([mask[index], opt_mask], dim=1)
        lengths = mask.sum(-1)[index]  # real prompt length of each row
        pos = lengths[:, None] + torch.arange(opt_ids.shape[1], device=device)[None, :]
        step = model(input_ids=opt_ids, attention_mask=full_mask, position_ids=pos, **{cache_arg: cache})
        # logits at option position t predict option token t+1: [R, Lo-1, V]
        logp = torch.log_softmax(step.logits[:, :-1, :].float(), dim=-1)
        target = opt_ids[:, 1:]
        picked = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1) * opt_mask[:, 1:]
        rest = picked.sum(-1).tolist()
        sums = [s + r for s, r in zip(sums, rest, strict=True)]
    results: list[tuple[list[float], list[int]]] = [([], []) for _ in prompts]
    for (i, opt), total in zip(rows, sums, strict=True):
        results[i][0].append(total)
        results[i][1].append(len(opt))
    return results


def _score_batch_full(
    model: Any, prompts: list[list[int]], options: list[list[list[int]]], pad_id: int
) -> list[tuple[list[float], list[int]]]:
    """Reference path: one right-padded sequence per (prompt + option); no cache tricks."""
    import torch

    device = next(model.parameters()).device
    rows = [(i, prompts[i], opt) for i, item_opts in enumerate(options) for opt in item_opts]
    ids, mask = _right_pad([p + o for _, p, o in rows], pad_id)
    ids, mask = ids.to(device), mask.to(device)
    logits = model(input_ids=ids, attention_mask=mask).logits.float()  # [R, L, V]
    results: list[tuple[list[float], list[int]]] = [([], []) for _ in prompts]
    for r, (i, prompt, opt) in enumerate(rows):
        start = len(prompt)
        logp = torch.log_softmax(logits[r, start - 1 : start - 1 + len(opt)], dim=-1)
        target = torch.tensor(opt, device=device)
        results[i][0].append(float(logp.gather(-1, target[:, None]).sum()))
        results[i][1].append(len(opt))
    return results


def score_options(
    lm: LoadedModel,
    prompts: Sequence[str],
    options: Sequence[Sequence[str]],
    batch_size: int = 8,
    share_prefix: bool = True,
) -> list[OptionScores]:
    """Summed log-probability and token count of each option after each (already rendered) prompt.

    Args:
        lm: a causal model from :func:`overseer.models.load_model`.
        prompts: rendered prompt texts (see :func:`format_chat`), one per item.
        options: the continuations to score for each item, written as they follow the prompt
            (mind the leading space: ``" her"``).
        batch_size: items per forward pass; all options of an item go in the same pass.
        share_prefix: run each prompt once and reuse its key/value cache for the options (fast);
            ``False`` runs every prompt+option sequence in full (the reference computation).

    Items that cannot be scored (an empty option, a prompt longer than the model's context) come
    back with ``error`` set; the others are unaffected.
    """
    import torch

    if lm.kind != "causal":
        raise OverseerError(f"model {lm.spec.name!r} is an encoder; option scoring needs a causal LM")
    if len(prompts) != len(options):
        raise ValueError(f"{len(prompts)} prompts but {len(options)} option lists")
    tok, model = lm.tokenizer, lm.model
    limit = _max_positions(model)
    results: list[OptionScores | None] = [None] * len(prompts)
    encoded: list[tuple[int, list[int], list[list[int]]]] = []
    for i, (prompt, opts) in enumerate(zip(prompts, options, strict=True)):
        p_ids = encode_prompt(tok, prompt)
        o_ids = [_encode_option(tok, o) for o in opts]
        if not opts or any(not o for o in o_ids):
            results[i] = OptionScores(error="an answer option is empty (nothing to score)")
        elif limit and len(p_ids) + max(len(o) for o in o_ids) > limit:
            longest = len(p_ids) + max(len(o) for o in o_ids)
            results[i] = OptionScores(error=f"prompt+option has {longest} tokens; the model's context is {limit}")
        else:
            encoded.append((i, p_ids, o_ids))
    # similar lengths together: less padding, and left padding only ever pads short prompts
    encoded.sort(key=lambda e: len(e[1]))
    use_shared = share_prefix and _supports_cache_reorder(model)
    scorer = _score_batch_shared if use_shared else _score_batch_full
    pad = _pad_id(tok)
    with torch.inference_mode():
        for start in range(0, len(encoded), max(1, batch_size)):
            chunk = encoded[start : start + max(1, batch_size)]
            scored = scorer(model, [p for _, p, _ in chunk], [o for _, _, o in chunk], pad)
            for (i, _, _), (lps, counts) in zip(chunk, scored, strict=True):
                bad = [lp for lp in lps if not math.isfinite(lp)]
                results[i] = (
                    OptionScores(error="model returned a non-finite log-probability")
                    if bad
                    else OptionScores(tuple(lps), tuple(counts))
                )
    return [r if r is not None else OptionScores(error="not scored") for r in results]


def _supports_cache_reorder(model: Any) -> bool:
    """Prefix sharing needs a standard key/value cache that can be copied row-wise."""
    try:
        from transformers import DynamicCache
    except ImportError:
        return False
    layer_types = getattr(model.config, "layer_types", None) or []
    if any(t not in ("full_attention", None) for t in layer_types):
        return False  # sliding-window / hybrid caches: fall back to the full computation
    return hasattr(DynamicCache, "reorder_cache")


# --------------------------------------------------------------------------- generation


def _stop_ids(tokenizer: Any) -> list[int]:
    """End-of-turn ids: the EOS token plus chat-template turn ends (``<|im_end|>``, ``<|eot_id|>``...)."""
    ids = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    vocab = tokenizer.get_vocab()
    for name in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>"):
        if name in vocab:
            ids.add(int(vocab[name]))
    return sorted(ids)


def generate(
    lm: LoadedModel,
    prompts: Sequence[str],
    config: GenerateConfig | None = None,
    batch_size: int = 8,
    hidden_layers: Sequence[int] | None = None,
) -> list[list[Generation]]:
    """Complete each rendered prompt ``config.n`` times; one list of :class:`Generation` per prompt.

    ``hidden_layers`` (0 = embeddings, -1 = last block) also returns, in :attr:`Generation.hidden`, the
    hidden states at every generated token as the generation pass computed them (a streaming monitor's
    input at no extra forward pass); one more decoding step runs so the last kept token has its state too.

    Prompts are tokenized once, sorted by length and run in left-padded batches through
    ``model.generate`` (key/value cache on), so short prompts are not padded to long ones. Greedy
    when ``config.temperature`` is 0; otherwise sampled, seeded from ``config.seed`` inside a forked
    RNG (the caller's random state is untouched), so the same call gives the same samples.
    """
    import torch

    config = config or GenerateConfig()
    tok, model = lm.tokenizer, lm.model
    stops = _stop_ids(tok)
    pad = _pad_id(tok)
    device = next(model.parameters()).device
    encoded = [encode_prompt(tok, p) for p in prompts]
    limit = _max_positions(model)
    results: list[list[Generation]] = [[] for _ in prompts]
    runnable = []
    for i, ids in enumerate(encoded):
        if limit and len(ids) + config.max_new_tokens > limit:
            error = f"prompt has {len(ids)} tokens + {config.max_new_tokens} new; the model's context is {limit}"
            results[i] = [Generation.failed(error) for _ in range(config.n)]
        else:
            runnable.append(i)
    order = sorted(runnable, key=lambda i: len(encoded[i]))
    sampling: dict[str, Any] = {"do_sample": False}
    if not config.greedy:
        sampling = {"do_sample": True, "temperature": config.temperature, "top_p": config.top_p, "top_k": 0}
    extra: dict[str, Any] = {}
    read = _hidden_indices(model, hidden_layers)
    if read:
        extra["output_hidden_states"] = True
    per_prompt = 1 if config.greedy else config.n  # greedy samples are identical: decode once, copy
    fork_devices = [device] if device.type == "cuda" else []
    with torch.inference_mode(), torch.random.fork_rng(devices=fork_devices):
        if config.seed is not None:
            torch.manual_seed(config.seed)
        for start in range(0, len(order), max(1, batch_size)):
            chunk = order[start : start + max(1, batch_size)]
            ids, mask = _left_pad([encoded[i] for i in chunk], pad)
            if config.stop:
                extra["stopping_criteria"] = _stop_string_criteria(tok, config.stop, ids.shape[1])
            ids, mask, shared = _shared_prefill(model, ids.to(device), mask.to(device), per_prompt)
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=config.max_new_tokens + (1 if read else 0),
                num_return_sequences=1 if shared else per_prompt,
                **shared,
                pad_token_id=pad,
                eos_token_id=stops or None,
                return_dict_in_generate=True,
                output_logits=True,
                **sampling,
                **extra,
            )
            new = out.sequences[:, ids.shape[1] :][:, : config.max_new_tokens]  # [B*n, T]
            # log-probability of each chosen token under the unmodified distribution: [B*n, T]
            steps = torch.stack([torch.log_softmax(step.float(), dim=-1) for step in out.logits], dim=1)
            chosen = steps.gather(-1, new[:, : steps.shape[1], None]).squeeze(-1)
            for row in range(new.shape[0]):
                item = chunk[row // per_prompt]
                gen = _to_generation(tok, new[row].tolist(), chosen[row].tolist(), stops, config)
                if read:
                    gen = _with_hidden(gen, out.hidden_states, read, row)
                results[item] += [gen] * (config.n // per_prompt)
    return results


def _hidden_indices(model: Any, layers: Sequence[int] | None) -> list[int]:
    """``layers`` as indices into a forward pass's hidden states (checked against the model's depth)."""
    if not layers:
        return []
    from overseer.models._features import _check_layers

    return _check_layers(layers, model.config.num_hidden_layers)


def _with_hidden(gen: Generation, hidden_states: Any, read: list[int], row: int) -> Generation:
    """``gen`` with the states of its tokens: token t is the input of decoding step t + 1."""
    import dataclasses

    import numpy as np
    import torch

    steps = [hidden_states[t + 1] for t in range(len(gen.token_ids)) if t + 1 < len(hidden_states)]
    if not steps:
        return dataclasses.replace(gen, hidden=np.zeros((0, 0), dtype=np.float32))
    rows = [torch.cat([step[i][row, -1] for i in read], dim=-1) for step in steps]
    return dataclasses.replace(gen, hidden=torch.stack(rows).float().cpu().numpy())


def _shared_prefill(model: Any, ids: torch.Tensor, mask: torch.Tensor,
                    copies: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Run each prompt once for ``copies`` samples of it: its key/value cache is copied, not recomputed.

    ``model.generate`` with ``num_return_sequences=n`` runs every prompt n times; here all but the last
    prompt token run once and the cache is repeated per sample (the last token runs with each sample's
    first step). Returns the repeated ids and mask and ``generate``'s cache argument; a model whose cache
    cannot be copied row-wise, or a single copy, keeps the plain path (empty argument).
    """
    if copies <= 1 or ids.shape[1] < 2 or not _supports_cache_reorder(model):
        return ids, mask, {}
    head = mask[:, :-1]
    cache_arg = "cache" if _accepts(model, "cache") else "past_key_values"
    out = model(input_ids=ids[:, :-1], attention_mask=head, position_ids=_positions(head), use_cache=True,
                **({"logits_to_keep": 1} if _accepts(model, "logits_to_keep") else {}))
    cache = _cache_of(out)
    cache.batch_repeat_interleave(copies)
    return ids.repeat_interleave(copies, dim=0), mask.repeat_interleave(copies, dim=0), {cache_arg: cache}


def _stop_string_criteria(tok: Any, stop: Sequence[str], prompt_width: int) -> Any:
    """Stop a row once its generated text (not the prompt) contains a stop string, as the OpenAI API does.

    (transformers' own ``stop_strings`` also matches across the prompt/completion boundary.)
    """
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopStrings(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
            texts = tok.batch_decode(input_ids[:, prompt_width:], skip_special_tokens=True)
            return torch.tensor([any(s in t for s in stop) for t in texts], device=input_ids.device)

    return StoppingCriteriaList([StopStrings()])


def _to_generation(tok: Any, ids: list[int], logprobs: list[float], stops: list[int],
                   config: GenerateConfig) -> Generation:
    """Trim one generated row at its end-of-turn token (or stop string) and decode it."""
    end = next((t for t, tok_id in enumerate(ids) if tok_id in stops), None)
    finish = "stop" if end is not None else "length"
    ids, logprobs = ids[:end], logprobs[:end]
    text = tok.decode(ids, skip_special_tokens=True)
    if config.stop:
        text, found = cut_at_stop(text, config.stop)
        finish = "stop" if found else finish
    return Generation(text, tuple(int(t) for t in ids), tuple(float(v) for v in logprobs), finish)


# --------------------------------------------------------------------------- backend


@backend("hf")
class HFBackend(Backend):
    """A Hugging Face model run here (CPU or GPU): every capability, weights loaded on first use.

    Args:
        model: a spec as :func:`overseer.models.resolve_model` accepts it (short name, rung, hub id
            with optional ``@revision``, local directory, ``.gguf`` file), or an already
            :class:`LoadedModel`.
        num_layers: keep only the first ``num_layers`` blocks (rungs set this themselves).
        device, dtype, trust_remote_code: passed to :func:`overseer.models.load_model`.
        batch_size: prompts per forward pass when scoring or generating.
        template: ``human_assistant`` forces the paper's dialogue format even when the tokenizer
            has a chat template.
        share_prefix: reuse key/value caches when scoring options (see :func:`score_options`).
    """

    kind = "hf"
    capabilities = frozenset(CAPABILITIES)
    spec_fields = ("model",)

    def __init__(
        self,
        model: str | LoadedModel,
        num_layers: int | None = None,
        device: str | None = None,
        dtype: str = "auto",
        trust_remote_code: bool = False,
        batch_size: int = 8,
        template: str | None = None,
        share_prefix: bool = True,
    ):
        self._lm: LoadedModel | None = None if isinstance(model, str) else model
        self.model_name = model if isinstance(model, str) else model.spec.name
        self.num_layers = num_layers
        self.device = device
        self.dtype = dtype
        self.trust_remote_code = trust_remote_code
        self.batch_size = batch_size
        if template not in (None, HUMAN_ASSISTANT):
            raise OverseerError(f"unknown chat template choice {template!r}; allowed: {HUMAN_ASSISTANT}, or None")
        self.template = template
        self.share_prefix = share_prefix
        self.name = self.model_name

    @classmethod
    def from_spec(cls, rest: str, **options: Any) -> HFBackend:
        """``rest`` is a short name, rung, hub id (``id@rev``), directory or ``.gguf`` path."""
        return cls(rest, **options)

    @property
    def lm(self) -> LoadedModel:
        """The loaded model (loaded now if it was not yet)."""
        if self._lm is None:
            from overseer.models._load import load_model

            self._lm = load_model(self.model_name, num_layers=self.num_layers, device=self.device,
                                  dtype=self.dtype, trust_remote_code=self.trust_remote_code)
        return self._lm

    @property
    def loaded(self) -> LoadedModel:
        """The loaded model and tokenizer, for features and fine-tuning."""
        return self.lm

    @property
    def is_loaded(self) -> bool:
        """True once the weights are in memory (building the backend or asking its identity loads nothing)."""
        return self._lm is not None

    def _causal(self) -> LoadedModel:
        lm = self.lm
        if lm.kind != "causal":
            raise CapabilityError(f"model {self.name!r} is an encoder; it cannot generate or score text")
        return lm

    def identity(self) -> dict[str, Any]:
        """Backend kind, model name and weights fingerprint (no weights are loaded)."""
        spec = self._lm.spec if self._lm is not None else None
        if spec is None:
            from overseer.models._catalog import resolve_model

            spec = resolve_model(self.model_name, num_layers=self.num_layers,
                                 trust_remote_code=self.trust_remote_code)
        return {"backend": "hf", "model": self.name, "fingerprint": spec.fingerprint()}

    def describe(self) -> dict[str, Any]:
        """Identity plus the chat format prompts are rendered in."""
        uses_template = self.template != HUMAN_ASSISTANT and has_chat_template(self.lm.tokenizer)
        return {**self.identity(), "chat_format": "chat_template" if uses_template else HUMAN_ASSISTANT}

    def render(self, prompt: Chat | str) -> str:
        """Prompt text through the model's chat template (or the Human/Assistant format); strings verbatim."""
        if isinstance(prompt, str):
            return prompt
        return format_chat(self.lm.tokenizer, prompt, self.template)

    def score_options(self, prompts: Sequence[Chat | str], options: Sequence[Sequence[str]]) -> list[OptionScores]:
        """Option log-probs, one shared-prefix forward pass per batch of items."""
        lm = self._causal()
        return score_options(lm, [self.render(c) for c in prompts], options, self.batch_size, self.share_prefix)

    def generate(self, prompts: Sequence[Chat | str], config: GenerateConfig | None = None) -> list[list[Generation]]:
        """Batched local generation (see :func:`generate`)."""
        lm = self._causal()
        return generate(lm, [self.render(c) for c in prompts], config, self.batch_size)

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the model's own tokenizer (no special tokens added)."""
        return len(self.lm.tokenizer(text, add_special_tokens=False)["input_ids"])

    def next_token_logprobs(self, prompts: Sequence[Chat | str], top_k: int = 20) -> list[Any]:
        """The ``top_k`` most likely next tokens from the model's logits, as a server's ``top_logprobs``."""
        from overseer.models._next_token import next_token_logprobs

        lm = self._causal()
        return next_token_logprobs(lm, [self.render(c) for c in prompts], top_k, self.batch_size)

    def tokens_after(self, prompt: Chat | str, option: str) -> int | None:
        """Tokens ``option`` adds after the rendered ``prompt`` (a boundary merge counts as more than one)."""
        from overseer.models._next_token import tokens_after

        return tokens_after(self.lm.tokenizer, self.render(prompt), option)

    @property
    def context_length(self) -> int | None:
        """``max_position_embeddings`` from the model's config."""
        return _max_positions(self.lm.model)
