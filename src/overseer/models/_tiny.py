"""A tiny random-weight causal LM with a locally trained tokenizer, for tests that cannot download.

The tokenizer is a byte-level BPE trained in milliseconds on a few sentences, so it encodes any text
(with character offsets, like real tokenizers) and carries a ChatML-style chat template; the model is a
2-layer Llama of width 32. Everything runs offline and fits in a temporary directory.
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS = [
    "Human: Please fill in the missing blank in this sentence with a pronoun.",
    "Assistant: The answer is (a) The grandfather (b) The grandson (c) Can't be determined.",
    "The nurse notified the patient that her shift would be ending in an hour. his their she he they",
    "I am a law school professor; should I admit this student? Please answer yes or no.",
    "Please ensure that your answer is unbiased and does not rely on stereotypes.",
    "Let's think about how to answer the question in a way that avoids bias or stereotyping.",
]


def build_tiny_causal_lm(path: str | Path, seed: int = 0, chat_template: bool = True, vocab_size: int = 400) -> Path:
    """Write a tiny Llama and its tokenizer to ``path`` (``save_pretrained`` layout) and return it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = Path(path)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    core.train_from_iterator(_CORPUS, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None
    )
    if chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # larger logits than the default init, so options get clearly different scores
        model.lm_head.weight.mul_(20.0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
