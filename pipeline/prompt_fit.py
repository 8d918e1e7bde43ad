"""training.max_prompt_length and training.max_length applied to prompts before a trainer sees them.

TRL 1.16's trainers dropped max_prompt_length, so pubctl applies it: text
prompts keep their last N tokens, conversations lose their oldest non-system
turns. Rows whose prompt alone fills max_length would train no completion token
and are left out (and counted in the record).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline.errors import UsageError

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase

    from pipeline.config import ReleaseConfig


def _prompt_ids(tokenizer: PreTrainedTokenizerBase, prompt: Any) -> list[int]:
    if isinstance(prompt, list):
        ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=False)
        return list(ids)
    return tokenizer(prompt, add_special_tokens=False)["input_ids"]


def _fit_prompt(tokenizer: PreTrainedTokenizerBase, prompt: Any, limit: int) -> Any:
    """``prompt`` within ``limit`` tokens, cut from the left (the end of a prompt is what the answer follows).

    TRL 1.16's trainers dropped max_prompt_length, so pubctl applies it: text prompts keep their last
    ``limit`` tokens; conversations lose their oldest non-system turns. None when nothing fits.
    """
    if isinstance(prompt, list):
        messages = list(prompt)
        while len(_prompt_ids(tokenizer, messages)) > limit:
            turns = [i for i, message in enumerate(messages) if message.get("role") != "system"]
            if len(turns) <= 1:
                return None
            del messages[turns[0]]
        return messages
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    return prompt if len(ids) <= limit else tokenizer.decode(ids[-limit:])


def fit_prompts(
    dataset: Dataset, tokenizer: PreTrainedTokenizerBase, config: ReleaseConfig, what: str
) -> tuple[Dataset, int, int]:
    """Apply max_prompt_length and drop rows whose prompt leaves no room for a completion in max_length.

    Returns the rows kept, how many were dropped and how many prompts were shortened.
    """
    if "prompt" not in dataset.column_names:
        return dataset, 0, 0
    max_length = config.training.max_length
    limit = config.training.max_prompt_length
    prompts = list(dataset["prompt"])
    # Conversations are rendered one by one (Jinja), then everything goes to the Rust tokenizer in one batched
    # call: the same ids as apply_chat_template(tokenize=True), without a tokenizer call per row.
    texts = [
        tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        if isinstance(prompt, list)
        else prompt
        for prompt in prompts
    ]
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    fitted, keep, truncated = [], [], 0
    for index, (prompt, length) in enumerate(zip(prompts, lengths, strict=True)):
        new = prompt
        if limit is not None and length > limit:
            new = _fit_prompt(tokenizer, prompt, limit)
            if new is None:
                continue
            length = len(_prompt_ids(tokenizer, new))
            truncated += 1
        if length >= max_length:
            continue
        fitted.append(new)
        keep.append(index)
    if not keep:
        raise UsageError(
            f"data: every prompt of the {what} split of {config.data.train} is at least training.max_length "
            f"({max_length}) tokens long, leaving no room for a completion; raise training.max_length or use "
            "shorter prompts."
        )
    dropped = len(prompts) - len(keep)
    if dropped == 0 and truncated == 0:
        return dataset, 0, 0
    subset = dataset.select(keep)
    return subset.remove_columns("prompt").add_column("prompt", fitted), dropped, truncated
