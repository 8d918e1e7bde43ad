"""A faithful offline stand-in for Qwen/Qwen3-0.6B's and Qwen/Qwen3-1.7B's small files (no weights).

The rehearsal (``pubctl release NAME --rehearse --offline --model-files DIR``) reads what
``huggingface-cli download Qwen/Qwen3-0.6B --include '*.json' '*.txt'`` gives: config.json,
generation_config.json, tokenizer.json, tokenizer_config.json, vocab.json and merges.txt. Tests cannot
reach the Hub, so :func:`write_qwen3_files` writes the same six files:

- config.json and generation_config.json are the published files, value for value;
- the tokenizer is Qwen2's byte-level BPE pipeline (NFC, Qwen's split regex, ByteLevel) with merges
  trained in a fraction of a second on pubctl's bundled corpus, so English and Arabic text take a
  realistic number of tokens; the regular vocabulary is then padded with never-produced filler
  tokens to Qwen's 151643 entries, which puts the 26 added tokens at Qwen's real ids and makes
  ``len(tokenizer)`` 151669 while the model's ``vocab_size`` stays 151936 (Qwen pads the embedding);
- the chat template is Qwen3's own, from tests/fixtures/qwen3/chat_template.jinja (see SOURCE.md).

What differs from the real files: the merged tokens and their ids (about 4.7k learnt merges where Qwen has
151k). The 256 single-byte tokens do keep Qwen's ids ("!" 0, "\\n" 198, " " 220), the added tokens keep
theirs, and ids 256 + (number of merges) to 151642 are filler that no text encodes to.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Literal

Variant = Literal["0.6B", "1.7B"]

_TESTS = Path(__file__).resolve().parent
CORPUS = _TESTS.parent / "pipeline" / "demo" / "data" / "corpus.txt"
CHAT_TEMPLATE_FILE = _TESTS / "fixtures" / "qwen3" / "chat_template.jinja"

REGULAR_VOCAB_SIZE = 151643
"""Qwen2/2.5/3's byte-level BPE vocabulary ends at 151642; the added tokens start at <|endoftext|> = 151643."""
MODEL_VOCAB_SIZE = 151936
"""config.json's vocab_size: the embedding is padded past the tokenizer's 151669 entries."""
TRAINING_VOCAB_LIMIT = 20_000
"""Above what the corpus can reach with min_frequency=2 (about 4.7k merges), so training runs to exhaustion."""

# Qwen2Tokenizer's PRETOKENIZE_REGEX (transformers/models/qwen2/tokenization_qwen2.py), identical to the
# "Split" pattern of the published Qwen3 tokenizer.json.
PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# (content, special) from id 151643 on. The flags follow Qwen3's published tokenizer_config.json and
# tokenizer.json: only the 13 control tokens up to <|video_pad|> are special; <tool_call>, the FIM and
# repo tokens, <tool_response> and <think> are plain added tokens, so decode(skip_special_tokens=True)
# keeps them (the model must see and emit <think>/<tool_call>; the FIM tokens were not special in Qwen2.5
# either). Checked against a public copy of Qwen3-4B's tokenizer_config.json and tokenizer.json (every Qwen3
# text model ships the same 26 added tokens) and one of a Qwen2.5-based model's (the same first 22).
ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
    ("<tool_response>", False),
    ("</tool_response>", False),
    ("<think>", False),
    ("</think>", False),
)
TOKENIZER_LENGTH = REGULAR_VOCAB_SIZE + len(ADDED_TOKENS)  # 151669, as len(AutoTokenizer("Qwen/Qwen3-0.6B"))

# Where the config values were checked (no Hub access here):
#   [pub]   independent public copies of the Hub's config.json, found in an offline index of public
#           repositories: for 0.6B a note quoting the whole file and a source comment quoting
#           huggingface.co/Qwen/Qwen3-0.6B/raw/main/config.json; for 1.7B a log of
#           `curl huggingface.co/Qwen/Qwen3-1.7B/resolve/main/config.json` and a write-up quoting both
#           files whole. All copies agree on every key below.
#   [tf]    transformers 5.24 site-packages, models/qwen3/configuration_qwen3.py: Qwen3Config's
#           defaults (vocab_size, head_dim, hidden_act, initializer_range, rms_norm_eps, use_cache,
#           attention_bias, use_sliding_window, max_window_layers, attention_dropout).
#   [trl]   trl 1.16 site-packages docstrings (trainer/sft_trainer.py, kto_trainer.py) tokenise with Qwen:
#           151643 <|endoftext|>, 151644 <|im_start|>, 151645 <|im_end|>.
#   [count] the parameter counts in tests/test_qwen3_fixture.py (596,049,920 for 0.6B) follow from the
#           widths, and a meta-device Qwen3ForCausalLM built from this file has exactly that many.
_CONFIG_COMMON: dict[str, Any] = {
    "architectures": ["Qwen3ForCausalLM"],  # [pub]
    "attention_bias": False,  # [pub] [tf]
    "attention_dropout": 0.0,  # [pub] [tf]
    "bos_token_id": 151643,  # [pub] [trl]; <|endoftext|>, though the tokenizer has no bos_token
    "eos_token_id": 151645,  # [pub] [trl]; <|im_end|>
    "head_dim": 128,  # [pub] [tf]; explicit: not hidden_size / heads (64 for 0.6B)
    "hidden_act": "silu",  # [pub] [tf]
    "initializer_range": 0.02,  # [pub] [tf]
    "max_position_embeddings": 40960,  # [pub]; the card advertises 32768 context, the file says 40960
    "max_window_layers": 28,  # [pub] [tf]
    "model_type": "qwen3",  # [pub] [tf]
    "num_attention_heads": 16,  # [pub], both variants
    "num_hidden_layers": 28,  # [pub], both variants
    "num_key_value_heads": 8,  # [pub], both variants
    "rms_norm_eps": 1e-06,  # [pub] [tf]
    "rope_scaling": None,  # [pub]
    "rope_theta": 1000000,  # [pub]; an int in the file, as published
    "sliding_window": None,  # [pub]
    "tie_word_embeddings": True,  # [pub], both variants; [count] depends on it
    "torch_dtype": "bfloat16",  # [pub]; transformers 5 reads it as `dtype`
    "transformers_version": "4.51.0",  # [pub]
    "use_cache": True,  # [pub] [tf]
    "use_sliding_window": False,  # [pub] [tf]
    "vocab_size": MODEL_VOCAB_SIZE,  # [pub] [tf]
}
_CONFIG_WIDTHS: dict[str, dict[str, int]] = {
    "0.6B": {"hidden_size": 1024, "intermediate_size": 3072},  # [pub]
    "1.7B": {"hidden_size": 2048, "intermediate_size": 6144},  # [pub]
}

# Identical for 0.6B and 1.7B. Values: a llamafactory log printing the GenerationConfig it loaded from a
# local Qwen3-0.6B/generation_config.json, a blog post printing the same object, and a Rust test
# quoting the file with its transformers_version (which GenerationConfig's repr leaves out).
GENERATION_CONFIG: dict[str, Any] = {
    "bos_token_id": 151643,
    "do_sample": True,
    "eos_token_id": [151645, 151643],
    "pad_token_id": 151643,
    "temperature": 0.6,
    "top_k": 20,
    "top_p": 0.95,
    "transformers_version": "4.51.0",
}


def qwen3_config(variant: Variant = "0.6B") -> dict[str, Any]:
    """The published config.json of Qwen/Qwen3-<variant>, as a dict."""
    if variant not in _CONFIG_WIDTHS:
        raise ValueError(f"variant must be one of {sorted(_CONFIG_WIDTHS)}, not {variant!r}")
    return {**_CONFIG_COMMON, **_CONFIG_WIDTHS[variant]}


def write_qwen3_files(folder: Path, variant: Variant = "0.6B") -> Path:
    """Write Qwen/Qwen3-<variant>'s config, generation config and tokenizer files into ``folder``; returns it.

    The tokenizer files are built once per process (about half a second) and only written after that.
    """
    config = qwen3_config(variant)
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        # transformers' own layout (to_json_string): sorted keys, indent 2, final newline.
        "config.json": json.dumps(config, indent=2, sort_keys=True) + "\n",
        "generation_config.json": json.dumps(GENERATION_CONFIG, indent=2, sort_keys=True) + "\n",
        **_tokenizer_files(),
    }
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _bytes_to_unicode() -> list[tuple[int, str]]:
    """GPT-2's byte -> printable character map, in the order Qwen's vocabulary numbers the 256 bytes.

    Printable bytes keep their own character and come first; the rest are shifted past 255. That order
    puts "!" at id 0 and "\\n" (Ċ) at id 198, as in Qwen's vocab.json.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    pairs = [(byte, chr(byte)) for byte in printable]
    shifted = 0
    for byte in range(256):
        if byte not in printable:
            pairs.append((byte, chr(256 + shifted)))
            shifted += 1
    return pairs


def _train_merges() -> list[tuple[str, str]]:
    """Byte-level BPE merges learnt from the bundled English/Arabic corpus, with Qwen's pre-tokenisation."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=TRAINING_VOCAB_LIMIT,
        # A pair seen once is memorising the corpus, not learning the language.
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    # One item, not one per line: the split regex then sees the same "\n\n" runs as on real documents.
    tokenizer.train_from_iterator([CORPUS.read_text(encoding="utf-8")], trainer)
    # The trainer breaks count ties by pair order, so the merges (and every id) are the same in every run.
    merges = json.loads(tokenizer.to_str())["model"]["merges"]
    return [(left, right) for left, right in merges]


def _vocabulary(merges: list[tuple[str, str]]) -> dict[str, int]:
    """256 bytes, then one token per merge in merge order (BPE's own numbering), then filler to 151643."""
    vocab = {char: index for index, (_, char) in enumerate(_bytes_to_unicode())}
    for left, right in merges:
        merged = left + right
        if merged in vocab:
            raise AssertionError(f"merge {left!r} + {right!r} repeats the token {merged!r}")
        vocab[merged] = len(vocab)
    if len(vocab) > REGULAR_VOCAB_SIZE:
        raise AssertionError(f"{len(vocab)} trained tokens do not fit below Qwen's first added id {REGULAR_VOCAB_SIZE}")
    # Filler is never produced by encoding: no merge builds it, and the split regex cuts any text that
    # spells it at "_" and before the digits. Plain ASCII keeps it decodable by the ByteLevel decoder.
    for token_id in range(len(vocab), REGULAR_VOCAB_SIZE):
        filler = f"[UNUSED_{token_id}]"
        if filler in vocab:
            raise AssertionError(f"filler {filler!r} collides with a trained token")
        vocab[filler] = token_id
    return vocab


def _tokenizer_config() -> dict[str, Any]:
    """Qwen3-0.6B's / 1.7B's tokenizer_config.json (the two are the same), with Qwen3's chat template."""
    return {
        # In both public copies consulted; inert either way, as Qwen3 has no bos_token to add.
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": {
            str(REGULAR_VOCAB_SIZE + offset): {
                "content": content,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": special,
            }
            for offset, (content, special) in enumerate(ADDED_TOKENS)
        },
        # The special ones except <|endoftext|>, which is named as pad_token instead.
        "additional_special_tokens": [content for content, special in ADDED_TOKENS[1:] if special],
        "bos_token": None,
        "chat_template": CHAT_TEMPLATE_FILE.read_text(encoding="utf-8"),
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def _tokenizer_json(vocab: dict[str, int], merges: list[tuple[str, str]]) -> dict[str, Any]:
    """tokenizer.json in the layout of Qwen3's published one.

    Written as JSON rather than built through the tokenizers API: putting 150k filler entries in with
    add_tokens is far slower than serialising a dict.
    """
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": REGULAR_VOCAB_SIZE + offset,
                "content": content,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": special,
            }
            for offset, (content, special) in enumerate(ADDED_TOKENS)
        ],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": PRETOKENIZE_REGEX}, "behavior": "Isolated", "invert": False},
                byte_level,
            ],
        },
        "post_processor": byte_level,
        "decoder": byte_level,
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "",
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": [[left, right] for left, right in merges],
        },
    }


@functools.cache
def _tokenizer_files() -> dict[str, str]:
    """The texts of tokenizer.json, tokenizer_config.json, vocab.json and merges.txt; the same for both variants."""
    merges = _train_merges()
    vocab = _vocabulary(merges)
    return {
        "tokenizer.json": json.dumps(_tokenizer_json(vocab, merges), indent=2, ensure_ascii=False),
        "tokenizer_config.json": json.dumps(_tokenizer_config(), indent=2, ensure_ascii=False, sort_keys=True),
        # The slow-tokenizer pair, compact like Qwen's own vocab.json; Qwen2Tokenizer can load from these alone.
        "vocab.json": json.dumps(vocab, ensure_ascii=False, separators=(",", ":")),
        "merges.txt": "#version: 0.2\n" + "".join(f"{left} {right}\n" for left, right in merges),
    }
