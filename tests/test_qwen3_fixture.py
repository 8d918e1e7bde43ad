"""The Qwen3 stand-in files (tests/qwen3_fixture.py) load and behave like Qwen/Qwen3-0.6B's and -1.7B's."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import transformers
from qwen3_fixture import (
    ADDED_TOKENS,
    CHAT_TEMPLATE_FILE,
    CORPUS,
    REGULAR_VOCAB_SIZE,
    Variant,
    qwen3_config,
    write_qwen3_files,
)

QWEN3_IDS = {
    "<|endoftext|>": 151643,
    "<|im_start|>": 151644,
    "<|im_end|>": 151645,
    "<|object_ref_start|>": 151646,
    "<|object_ref_end|>": 151647,
    "<|box_start|>": 151648,
    "<|box_end|>": 151649,
    "<|quad_start|>": 151650,
    "<|quad_end|>": 151651,
    "<|vision_start|>": 151652,
    "<|vision_end|>": 151653,
    "<|vision_pad|>": 151654,
    "<|image_pad|>": 151655,
    "<|video_pad|>": 151656,
    "<tool_call>": 151657,
    "</tool_call>": 151658,
    "<|fim_prefix|>": 151659,
    "<|fim_middle|>": 151660,
    "<|fim_suffix|>": 151661,
    "<|fim_pad|>": 151662,
    "<|repo_name|>": 151663,
    "<|file_sep|>": 151664,
    "<tool_response>": 151665,
    "</tool_response>": 151666,
    "<think>": 151667,
    "</think>": 151668,
}
# Qwen3's published tokenizer_config.json marks everything from <tool_call> on as special=false: the FIM and
# repo tokens too, not only the tool/think tags. decode(skip_special_tokens=True) keeps all twelve.
NOT_SPECIAL = {content for content, token_id in QWEN3_IDS.items() if token_id >= 151657}

# Parameters of Qwen3ForCausalLM with tied embeddings, counted once (model.parameters() skips the shared lm_head).
# 0.6B: 596,049,920, the published count: 151936 x 1024 embedding (155,582,464) + 28 layers x 15,730,944 + the
#       final norm (1,024); non-embedding 440,467,456 (the card's "0.44B"). Counting lm_head separately would
#       give 751,632,384.
# 1.7B: 1,720,574,976: 151936 x 2048 embedding (311,164,928) + 28 layers x 50,336,000 + 2,048; non-embedding
#       1,409,410,048 (the card's "1.4B"); 2,031,739,904 with lm_head counted separately.
PARAMETERS = {"0.6B": 596_049_920, "1.7B": 1_720_574_976}
WIDTHS = {"0.6B": (1024, 3072), "1.7B": (2048, 6144)}

ENGLISH = "Heat from the Sun evaporates water from oceans, lakes and rivers; the vapour condenses into clouds."
ARABIC = "صباح الخير. الرد المعتاد هو صباح النور، ونقول شكراً جزيلاً عند تلقي المساعدة."


@pytest.fixture(scope="module")
def qwen3_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("qwen3")
    return {variant: write_qwen3_files(root / variant, variant) for variant in ("0.6B", "1.7B")}


@pytest.fixture(scope="module")
def tokenizer(qwen3_folders: dict[str, Path]) -> transformers.PreTrainedTokenizerBase:
    return transformers.AutoTokenizer.from_pretrained(qwen3_folders["0.6B"])


def test_the_folder_holds_what_a_weightless_hub_download_gives(qwen3_folders: dict[str, Path]) -> None:
    for variant, folder in qwen3_folders.items():
        names = {path.name for path in folder.iterdir()}
        assert names == {
            "config.json",
            "generation_config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "vocab.json",
            "merges.txt",
        }
        assert json.loads((folder / "config.json").read_text(encoding="utf-8")) == qwen3_config(variant)
    # The tokenizer files do not depend on the variant, as on the Hub.
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
        assert (qwen3_folders["0.6B"] / name).read_bytes() == (qwen3_folders["1.7B"] / name).read_bytes()


def test_tokenizer_has_qwen3s_added_tokens_at_their_real_ids(tokenizer: transformers.PreTrainedTokenizerBase) -> None:
    assert type(tokenizer).__name__ == "Qwen2Tokenizer"
    assert len(tokenizer) == 151669
    assert tokenizer.convert_tokens_to_ids(list(QWEN3_IDS)) == list(QWEN3_IDS.values())
    assert [content for content, _ in ADDED_TOKENS] == list(QWEN3_IDS)
    decoder = tokenizer.added_tokens_decoder
    assert {decoder[token_id].content: decoder[token_id].special for token_id in QWEN3_IDS.values()} == {
        content: content not in NOT_SPECIAL for content in QWEN3_IDS
    }
    assert (tokenizer.eos_token, tokenizer.eos_token_id) == ("<|im_end|>", 151645)
    assert (tokenizer.pad_token, tokenizer.pad_token_id) == ("<|endoftext|>", 151643)
    assert tokenizer.bos_token is None
    assert tokenizer.unk_token is None
    assert tokenizer.model_max_length == 131072


def test_chat_template_is_the_original_qwen3_template(tokenizer: transformers.PreTrainedTokenizerBase) -> None:
    # Byte-identical to TRL's copy, which TRL compares character for character to recognise Qwen3.
    spec = importlib.util.find_spec("trl")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("trl is not installed")
    trl_copy = Path(next(iter(spec.submodule_search_locations))) / "chat_templates" / "qwen3.jinja"
    assert CHAT_TEMPLATE_FILE.read_bytes() == trl_copy.read_bytes()
    assert tokenizer.chat_template == trl_copy.read_text(encoding="utf-8")


def test_chat_template_renders_like_qwen3(tokenizer: transformers.PreTrainedTokenizerBase) -> None:
    question = [{"role": "user", "content": "What is 2+2?"}]
    prompt = tokenizer.apply_chat_template(question, tokenize=False, add_generation_prompt=True)
    assert prompt == "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    no_thinking = tokenizer.apply_chat_template(
        question, tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    assert no_thinking == prompt + "<think>\n\n</think>\n\n"
    # A final assistant turn gets an empty think block (what SFT on Qwen3 trains on); earlier ones do not.
    answered = [*question, {"role": "assistant", "content": "4"}]
    assert tokenizer.apply_chat_template(answered, tokenize=False) == prompt + "<think>\n\n</think>\n\n4<|im_end|>\n"
    follow_up = [*answered, {"role": "user", "content": "And 3+3?"}]
    assert tokenizer.apply_chat_template(follow_up, tokenize=False, add_generation_prompt=True) == (
        prompt + "4<|im_end|>\n<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n"
    )


@pytest.mark.parametrize("text", [ENGLISH, ARABIC], ids=["english", "arabic"])
def test_text_round_trips_in_a_realistic_number_of_tokens(
    tokenizer: transformers.PreTrainedTokenizerBase, text: str
) -> None:
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(ids) == text
    # Trained merges, not bytes: Arabic letters are two bytes each, so byte-level would be ~2 tokens a letter.
    assert len(ids) <= len(text) / 2.5
    assert max(ids) < REGULAR_VOCAB_SIZE


def test_added_tokens_encode_whole(tokenizer: transformers.PreTrainedTokenizerBase) -> None:
    assert tokenizer.encode("<|im_end|>", add_special_tokens=False) == [151645]
    ids = tokenizer.encode("<think>\nok\n</think>", add_special_tokens=False)
    assert (ids[0], ids[-1]) == (151667, 151668)
    # No BOS or EOS is added: Qwen3 has no bos_token and appends nothing.
    assert tokenizer.encode("ok") == tokenizer.encode("ok", add_special_tokens=False)


def test_tokenizer_json_and_the_vocab_merges_pair_agree(
    qwen3_folders: dict[str, Path], tokenizer: transformers.PreTrainedTokenizerBase
) -> None:
    from tokenizers import Tokenizer

    folder = qwen3_folders["0.6B"]
    backend = Tokenizer.from_file(str(folder / "tokenizer.json"))
    corpus = CORPUS.read_text(encoding="utf-8")
    ids = backend.encode(corpus).ids
    assert ids == tokenizer.encode(corpus, add_special_tokens=False)
    assert backend.decode(ids) == corpus
    tokenizer_json = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    assert vocab == tokenizer_json["model"]["vocab"]
    assert sorted(vocab.values()) == list(range(REGULAR_VOCAB_SIZE))
    # Qwen's byte order: "!" first, "\n" (Ċ) at 198, " " (Ġ) at 220.
    assert (vocab["!"], vocab["Ċ"], vocab["Ġ"]) == (0, 198, 220)
    merges = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert merges[0] == "#version: 0.2"
    assert [line.split(" ") for line in merges[1:]] == tokenizer_json["model"]["merges"]
    # Filler ids exist (so the added tokens sit at Qwen's ids) but real text never produces them.
    trained = 256 + len(merges) - 1
    assert max(ids) < trained
    assert tokenizer.convert_ids_to_tokens(REGULAR_VOCAB_SIZE - 1) == f"[UNUSED_{REGULAR_VOCAB_SIZE - 1}]"


@pytest.mark.parametrize("variant", ["0.6B", "1.7B"])
def test_config_builds_qwen3_at_its_real_size(qwen3_folders: dict[str, Path], variant: Variant) -> None:
    config = transformers.AutoConfig.from_pretrained(qwen3_folders[variant])
    hidden, intermediate = WIDTHS[variant]
    assert (config.model_type, config.hidden_size, config.intermediate_size) == ("qwen3", hidden, intermediate)
    assert (config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads) == (28, 16, 8)
    assert (config.head_dim, config.vocab_size, config.max_position_embeddings) == (128, 151936, 40960)
    assert config.tie_word_embeddings is True
    assert config.dtype == torch.bfloat16
    with torch.device("meta"):
        model = transformers.Qwen3ForCausalLM(config)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert sum(parameter.numel() for parameter in model.parameters()) == PARAMETERS[variant]
    layer = model.model.layers[0]
    assert model.model.embed_tokens.weight.shape == (151936, hidden)
    assert layer.self_attn.q_proj.weight.shape == (16 * 128, hidden)
    assert layer.self_attn.k_proj.weight.shape == (8 * 128, hidden)
    assert layer.self_attn.q_norm.weight.shape == (128,)
    assert layer.mlp.down_proj.weight.shape == (hidden, intermediate)


def test_generation_config_stops_on_both_qwen_end_tokens(qwen3_folders: dict[str, Path]) -> None:
    for folder in qwen3_folders.values():
        generation = transformers.GenerationConfig.from_pretrained(folder)
        assert generation.eos_token_id == [151645, 151643]
        assert (generation.pad_token_id, generation.bos_token_id) == (151643, 151643)
        assert (generation.do_sample, generation.temperature, generation.top_k, generation.top_p) == (
            True,
            0.6,
            20,
            0.95,
        )
