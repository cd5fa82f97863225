"""A sequence classifier as a TRL reward function: prompt and completion (strings or chats) to one score."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from overseer.errors import OverseerError, unknown
from overseer.models._classifier_config import REWARD_OUTPUTS
from overseer.models._lm import Chat, format_chat

if TYPE_CHECKING:
    from overseer.models._classifier import SequenceClassifier


def _message_text(content: Any) -> str:
    """A chat message's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    raise OverseerError(f"chat message content must be a string or a list of parts; got {type(content).__name__}")


def _is_chat(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str) and all(isinstance(m, Mapping) for m in value)


def conversation_text(tokenizer: Any, prompt: str | Sequence[Mapping[str, Any]], completion: Any) -> str:
    """The text scored for one prompt and completion, either as a string or as chat messages.

    Strings are concatenated (TRL's standard format: the completion continues the prompt). Chat
    prompts are rendered with the tokenizer's chat template (the Human/Assistant format without one)
    and the completion's text follows as the assistant's answer.
    """
    answer = completion
    if _is_chat(completion):
        answer = "".join(_message_text(m.get("content", "")) for m in completion)
    if not isinstance(answer, str):
        kind = type(answer).__name__
        raise OverseerError(f"a completion must be a string or a list of chat messages; got {kind}")
    if isinstance(prompt, str):
        return prompt + answer
    if not _is_chat(prompt):
        raise OverseerError(f"a prompt must be a string or a list of chat messages; got {type(prompt).__name__}")
    messages = [{"role": m.get("role", ""), "content": _message_text(m.get("content", ""))} for m in prompt]
    return format_chat(tokenizer, Chat.of(messages, assistant_prefix=answer))


def reward_function(
    classifier: SequenceClassifier, output: str = "logit", batch_size: int = 32, name: str | None = None
) -> Callable[..., list[float]]:
    """A TRL reward function ``(prompts, completions, **columns) -> list[float]`` scoring with ``classifier``.

    Args:
        classifier: the scorer (its :meth:`~SequenceClassifier.conversation_text` makes each text).
        output: ``logit`` (log-odds of class 1, unbounded) or ``probability`` (P(class 1) in [0, 1]).
        batch_size: texts per forward pass.
        name: the function's ``__name__``, which TRL logs rewards under; default ``classifier_<output>``.

    Prompts and completions may be strings or lists of chat messages (see :func:`conversation_text`);
    other dataset columns TRL passes are ignored. Works outside a trainer too.
    """
    if output not in REWARD_OUTPUTS:
        raise unknown("reward output", output, REWARD_OUTPUTS)
    if batch_size <= 0:
        raise OverseerError(f"batch_size must be positive; got {batch_size}")

    def reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float]:
        if len(prompts) != len(completions):
            raise OverseerError(
                f"reward needs one prompt per completion; got {len(prompts)} prompts and "
                f"{len(completions)} completions"
            )
        texts = [classifier.conversation_text(p, c) for p, c in zip(prompts, completions, strict=True)]
        values = classifier.scores(texts, batch_size=batch_size) if output == "logit" else classifier.predict_proba(
            texts, batch_size=batch_size
        )
        return [float(v) for v in values]

    reward.__name__ = reward.__qualname__ = name or f"classifier_{output}"
    reward.__doc__ = f"{output} of class 1 from {classifier!r} for each prompt + completion."
    return reward
