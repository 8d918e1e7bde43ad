"""``builtin:tiny-qwen3``: a tiny Qwen3ForCausalLM built deterministically, with its own tokenizer.

Nothing can be downloaded where pubctl's tests run, so the demo carries its
base model as a recipe: a byte-level BPE tokenizer trained on the bundled text
(with Qwen's special tokens and a Qwen-style chat template) and a
Qwen3-architecture network initialised from a fixed seed. The result is cached
under runs/_cache/builtin/ keyed by a hash of the recipe and the corpus, so a
changed recipe builds a new model instead of reusing a stale one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from pipeline.atomic import private_to_normal
from pipeline.layout import cache_root

RECIPE_VERSION = 1
SEED = 1234
VOCAB_SIZE = 2048
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>")
ARCHITECTURE = {
    "hidden_size": 64,
    "intermediate_size": 192,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "max_position_embeddings": 4096,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}
# Qwen's ChatML layout without tool calling: the same turn markers and end token as Qwen3.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] | trim + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

DATA_DIR = Path(__file__).resolve().parent / "data"


def _corpus_files() -> list[Path]:
    """Text the tokenizer is trained on: the bundled corpus and the preference data."""
    return [path for path in (DATA_DIR / "corpus.txt", DATA_DIR / "preferences.jsonl") if path.is_file()]


def recipe_hash() -> str:
    """Hash of everything the built model depends on."""
    digest = hashlib.sha256()
    recipe = {
        "version": RECIPE_VERSION,
        "seed": SEED,
        "vocab": VOCAB_SIZE,
        "special": SPECIAL_TOKENS,
        "arch": ARCHITECTURE,
        "template": CHAT_TEMPLATE,
    }
    digest.update(json.dumps(recipe, sort_keys=True).encode())
    for path in _corpus_files():
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def tiny_qwen3_path(cache_dir: Path | None = None) -> Path:
    """Folder of the built model (built on first use, then reused)."""
    target = (cache_dir or cache_root()) / "builtin" / f"tiny-qwen3-{recipe_hash()}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = private_to_normal(Path(tempfile.mkdtemp(prefix=".tiny-qwen3-", dir=target.parent)))
    try:
        _build(staging)
        try:
            staging.rename(target)
        except OSError:
            if not (target / "config.json").is_file():  # not a concurrent builder that won the race
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


def _corpus_lines() -> list[str]:
    lines: list[str] = []
    for path in _corpus_files():
        if path.suffix == ".jsonl":
            for row in path.read_text(encoding="utf-8").splitlines():
                if row.strip():
                    record = json.loads(row)
                    lines.extend(str(record[key]) for key in ("prompt", "chosen", "rejected") if key in record)
        else:
            lines.extend(line for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    if not lines:
        raise FileNotFoundError(f"no tokenizer corpus in {DATA_DIR} (corpus.txt, preferences.jsonl)")
    return lines


def _build_tokenizer():  # -> PreTrainedTokenizerFast
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus_lines(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        chat_template=CHAT_TEMPLATE,
        model_max_length=ARCHITECTURE["max_position_embeddings"],
        padding_side="right",
    )


def _build(folder: Path) -> None:
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    tokenizer = _build_tokenizer()
    end_of_text = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        bos_token_id=end_of_text,
        eos_token_id=im_end,
        pad_token_id=end_of_text,
        **ARCHITECTURE,
    )
    torch.manual_seed(SEED)
    model = Qwen3ForCausalLM(config).to(torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=end_of_text, eos_token_id=[im_end, end_of_text], pad_token_id=end_of_text
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
