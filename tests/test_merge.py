"""The merge stage: streaming merge equals peft's merge_and_unload, parity, outputs, refusals.

Adapters are made here with peft on the built-in tiny Qwen3 (the train stage is not needed)
and every LoRA factor is randomised: peft initialises B (or an embedding's A) to zero, which
would make every merge trivially equal to the base.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from pipeline.config import load_config
from pipeline.errors import StageFailed, UsageError
from pipeline.layout import Layout
from pipeline.merging.adapter import load_adapter
from pipeline.merging.checkpoint import SAFE_INDEX, Checkpoint
from pipeline.merging.reference import merge_with_peft
from pipeline.merging.streaming import merge_streaming, shard_bytes
from pipeline.release import run_stage

ATTN = ["q_proj", "k_proj", "v_proj", "o_proj"]


# ----------------------------------------------------------------------------- helpers
def make_adapter(base_dir: Path, adapter_dir: Path, seed: int = 0, scale: float = 0.3, **lora: Any) -> Path:
    """Save a peft LoRA adapter for ``base_dir`` with every trainable tensor randomised.

    The default ``scale`` makes dW far larger than W, so every tensor difference shows; ``scale=0.02``
    gives a realistic adapter (dW a small fraction of W, the model's response to it near linear).
    """
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype="auto")
    peft_model = get_peft_model(model, LoraConfig(lora_dropout=0.0, **lora))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            noise = torch.randn(param.shape, generator=generator).to(param.dtype)
            if "lora_magnitude_vector" in name:
                param.mul_(1 + 0.2 * noise)
            elif "lora_" in name:
                param.copy_(scale * noise)
            elif "modules_to_save" in name:
                param.add_(0.05 * noise)
    peft_model.save_pretrained(adapter_dir)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(adapter_dir)
    return adapter_dir


def derived_base(
    source: Path, target: Path, *, dtype: torch.dtype | None = None, untie: bool = False, shard: str | None = None
) -> Path:
    """A variant of the tiny model: another dtype, separate output head, or several shards."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype or torch.float32)
    if untie:
        model.config.tie_word_embeddings = False
        generator = torch.Generator().manual_seed(7)
        head = model.lm_head.weight.detach().clone() + 0.02 * torch.randn(
            model.lm_head.weight.shape, generator=generator
        )
        model.lm_head.weight = torch.nn.Parameter(head.to(model.dtype))
    model.save_pretrained(target, max_shard_size=shard or "5GB")
    AutoTokenizer.from_pretrained(source).save_pretrained(target)
    return target


def all_tensors(folder: Path) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for file in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(file))
    return tensors


def assert_same_weights(first: Path, second: Path, atol: float, rtol: float = 0.0) -> None:
    a, b = all_tensors(first), all_tensors(second)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        torch.testing.assert_close(a[name].float(), b[name].float(), atol=atol, rtol=rtol, msg=name)


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def bases(tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bases")
    return {
        "tied": tiny_model_path,
        "untied": derived_base(tiny_model_path, root / "untied", untie=True),
        "sharded": derived_base(tiny_model_path, root / "sharded", untie=True, shard="200KB"),
        "bf16": derived_base(tiny_model_path, root / "bf16", dtype=torch.bfloat16),
    }


# ----------------------------------------------------- streaming merge == peft reference
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "lora-attention": ("tied", {"r": 4, "lora_alpha": 8, "target_modules": ATTN}),
    "rslora-dora": (
        "tied",
        {"r": 4, "lora_alpha": 16, "target_modules": ["q_proj", "down_proj"], "use_rslora": True, "use_dora": True},
    ),
    "rank-alpha-patterns": (
        "tied",
        {
            "r": 4,
            "lora_alpha": 8,
            "target_modules": ATTN,
            "rank_pattern": {"q_proj": 2},
            "alpha_pattern": {"v_proj": 3},
        },
    ),
    "tied-save-lm_head": (
        "tied",
        {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], "modules_to_save": ["lm_head"]},
    ),
    "tied-save-embed": (
        "tied",
        {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], "modules_to_save": ["embed_tokens"]},
    ),
    "tied-lora-embed": ("tied", {"r": 4, "lora_alpha": 8, "target_modules": ["embed_tokens", "v_proj"]}),
    "tied-kept-tied": (
        "tied",
        {
            "r": 4,
            "lora_alpha": 8,
            "target_modules": ["q_proj"],
            "modules_to_save": ["lm_head"],
            "ensure_weight_tying": True,
        },
    ),
    "untied-all-linear": ("untied", {"r": 4, "lora_alpha": 8, "target_modules": "all-linear"}),
    "untied-lm_head-lora": ("untied", {"r": 4, "lora_alpha": 8, "target_modules": ["lm_head", "up_proj"]}),
    "sharded": (
        "sharded",
        {"r": 8, "lora_alpha": 16, "target_modules": [*ATTN, "gate_proj"], "modules_to_save": ["lm_head"]},
    ),
    "bf16-dora": ("bf16", {"r": 4, "lora_alpha": 8, "target_modules": ATTN, "use_dora": True}),
}
# Which merged models store a separate lm_head (tied embeddings untied by the adapter).
UNTIED_AFTER = {"tied-save-lm_head", "tied-save-embed", "tied-lora-embed"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_streaming_merge_equals_peft(case: str, bases: dict[str, Path], tmp_path: Path) -> None:
    base_kind, lora = CASES[case]
    base_dir = bases[base_kind]
    adapter_dir = make_adapter(base_dir, tmp_path / "adapter", **lora)
    adapter = load_adapter(adapter_dir)
    base = Checkpoint.read(base_dir)
    streaming = merge_streaming(base, adapter, tmp_path / "streaming", "5GB")
    reference = merge_with_peft(
        base_dir, adapter_dir, tmp_path / "peft", "5GB", ensure_weight_tying=adapter.ensure_weight_tying
    )

    bf16 = base_kind == "bf16"
    # bf16: peft rounds the delta to bf16 before adding, the streaming merge rounds once: 1 ulp apart.
    assert_same_weights(
        tmp_path / "streaming", tmp_path / "peft", atol=1e-6 if not bf16 else 1e-5, rtol=0.0 if not bf16 else 2**-7
    )
    merged = all_tensors(tmp_path / "streaming")
    assert streaming.untied == reference.untied == (case in UNTIED_AFTER)
    assert ("lm_head.weight" in merged) == (base_kind in ("untied", "sharded") or case in UNTIED_AFTER)
    assert {t.dtype for t in merged.values()} == {torch.bfloat16 if bf16 else torch.float32}
    assert streaming.parameters == sum(t.numel() for t in merged.values())
    # the adapter really changed the model: every touched tensor differs from the base
    original = all_tensors(base_dir)
    for name in streaming.changed:
        if name in original:
            assert not torch.equal(original[name], merged[name]), name


@pytest.mark.parametrize("lora", [{"target_modules": ATTN}, {"target_modules": ["embed_tokens", "v_proj"]}])
def test_requested_float32_from_a_bf16_base_equals_peft(
    lora: dict[str, Any], bases: dict[str, Path], tmp_path: Path
) -> None:
    """model.dtype float32 on a bf16 base: merged in float32 like peft on the upcast base, not rounded to bf16."""
    adapter_dir = make_adapter(bases["bf16"], tmp_path / "adapter", r=4, lora_alpha=8, **lora)
    adapter = load_adapter(adapter_dir)
    merge_streaming(Checkpoint.read(bases["bf16"]), adapter, tmp_path / "streaming", "5GB", "float32")
    merge_with_peft(bases["bf16"], adapter_dir, tmp_path / "peft", "5GB", dtype="float32")
    assert_same_weights(tmp_path / "streaming", tmp_path / "peft", atol=1e-6, rtol=0.0)
    assert {t.dtype for t in all_tensors(tmp_path / "streaming").values()} == {torch.float32}


def test_output_shards_and_index(bases: dict[str, Path], tmp_path: Path) -> None:
    adapter = load_adapter(make_adapter(bases["sharded"], tmp_path / "adapter", r=4, lora_alpha=8, target_modules=ATTN))
    base = Checkpoint.read(bases["sharded"])
    assert len({info.file for info in base.tensors.values()}) > 1  # the base itself is sharded
    result = merge_streaming(base, adapter, tmp_path / "out", "150KB")
    index = json.loads((tmp_path / "out" / SAFE_INDEX).read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 2 and result.files == [*shards, SAFE_INDEX]
    assert set(index["weight_map"]) == set(base.tensors)
    total = 0
    for shard in shards:
        path = tmp_path / "out" / shard
        with safe_open(path, framework="pt") as handle:
            names = list(handle.keys())
            assert handle.metadata() == {"format": "pt"}
            sizes = [handle.get_tensor(n).numel() * handle.get_tensor(n).element_size() for n in names]
        assert all(index["weight_map"][n] == shard for n in names)
        assert sum(sizes) <= shard_bytes("150KB") or len(names) == 1
        total += sum(sizes)
    assert index["metadata"]["total_size"] == total
    assert index["metadata"]["total_parameters"] == result.parameters


def test_shard_sizes_parse() -> None:
    assert shard_bytes("5GB") == 5 * 10**9
    assert shard_bytes("2GiB") == 2 * 2**30
    assert shard_bytes("0.5MB") == 500_000
    with pytest.raises(ValueError, match="not a size"):
        shard_bytes("lots")


# ------------------------------------------------------------------------- the stage
@pytest.fixture
def release(make_config: Callable[..., str], project: Path) -> Callable[..., tuple[Any, Layout]]:
    """Write a config (demo + overrides) and return it with its layout."""

    def build(overrides: dict[str, Any] | None = None, name: str = "m") -> tuple[Any, Layout]:
        make_config(name, overrides or {})
        config = load_config(name)
        return config, Layout.for_release(config.name)

    return build


def assert_nothing_written(layout: Layout) -> None:
    assert not layout.merge_dir.exists()
    assert not layout.results.exists()
    leftovers = [p.name for p in layout.run_dir.glob(".merge-*")] if layout.run_dir.exists() else []
    assert leftovers == []


def test_stage_writes_a_standalone_model(release, tiny_model_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    from pipeline.results import read_results

    config, layout = release({"merge": {"max_shard_size": "400KB"}})
    make_adapter(tiny_model_path, layout.adapter_dir, r=4, lora_alpha=8, target_modules=ATTN)
    (layout.adapter_dir / "training_args.bin").write_bytes(b"a trainer's pickle, not part of the adapter")
    (layout.adapter_dir / "README.md").write_text("---\nlicence: license\n---\nTRL's generated card\n")
    record = run_stage("merge", config, layout).sections["merge"]

    model_dir = layout.merged_model_dir
    assert record.strategy == "streaming"
    assert 0 <= record.parity_max_abs_diff <= 1e-4
    assert record.probe_prompts == len(config.merge.probe_prompts)
    assert (model_dir / SAFE_INDEX).is_file()  # 400KB forces several shards for the ~0.9 MB model
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert tokenizer.chat_template and (model_dir / "chat_template.jinja").is_file()
    generation = GenerationConfig.from_pretrained(model_dir)
    # The base's stop list is kept whole (chat end first), not collapsed to the tokenizer's single eos.
    im_end, end_of_text = tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    assert tokenizer.eos_token_id == im_end
    assert generation.eos_token_id == [im_end, end_of_text]
    assert sorted(p.name for p in layout.merged_adapter_dir.iterdir()) == sorted(
        p.name for p in layout.adapter_dir.iterdir() if p.name not in ("training_args.bin", "README.md")
    )
    loaded = AutoModelForCausalLM.from_pretrained(model_dir)
    assert loaded.config.tie_word_embeddings is True
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight

    results = read_results(layout.results)
    assert results.merge == record
    model = results.model
    assert model.parameters == loaded.num_parameters()
    assert (model.architecture, model.dtype) == ("Qwen3ForCausalLM", "float32")
    assert (model.base_model, model.base_model_revision) == ("builtin:tiny-qwen3", None)
    # Measured facts only: publication metadata stays in the config, where the card reads it.
    assert not {"repo_id", "license", "language"} & set(model.model_dump())
    on_disk = sorted(p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file())
    assert [f.path for f in model.files] == on_disk
    from pipeline.hashing import sha256_file

    for entry in model.files:
        assert entry.size == (model_dir / entry.path).stat().st_size > 0
        assert entry.sha256 == sha256_file(model_dir / entry.path)
    assert list(layout.run_dir.glob(".merge-*")) == []

    # a second run replaces the first completely
    record_again = run_stage("merge", config, layout).sections["merge"]
    assert record_again.parity_max_abs_diff == record.parity_max_abs_diff


def test_stage_peft_strategy_bf16_untied(release, bases: dict[str, Path]) -> None:
    from pipeline.results import read_results

    config, layout = release(
        {"model": {"base_model": str(bases["bf16"]), "dtype": "auto"}, "merge": {"strategy": "peft"}}
    )
    make_adapter(
        bases["bf16"],
        layout.adapter_dir,
        r=4,
        lora_alpha=8,
        target_modules=["q_proj"],
        modules_to_save=["embed_tokens"],
    )
    record = run_stage("merge", config, layout).sections["merge"]
    assert record.strategy == "peft"
    # bf16 merges are judged relative to the adapter's own effect on the logits (pipeline/judgments.py)
    assert record.parity_gate.model_dump() == {"measure": "relative_to_adapter_effect", "bound": 0.25}
    assert record.parity_adapter_effect > 0
    assert record.parity_max_abs_diff / record.parity_adapter_effect <= 0.25
    merged = Checkpoint.read(layout.merged_model_dir)
    assert merged.dtype_name() == "bfloat16" and "lm_head.weight" in merged.tensors
    assert merged.config["tie_word_embeddings"] is False
    assert read_results(layout.results).model.dtype == "bfloat16"


def test_stage_streaming_untied_by_embedding_lora(release, tiny_model_path: Path) -> None:

    config, layout = release()
    make_adapter(tiny_model_path, layout.adapter_dir, r=4, lora_alpha=8, target_modules=["embed_tokens", "q_proj"])
    record = run_stage("merge", config, layout).sections["merge"]
    assert record.parity_max_abs_diff <= 1e-4
    merged = Checkpoint.read(layout.merged_model_dir)
    assert "lm_head.weight" in merged.tensors and merged.config["tie_word_embeddings"] is False


def test_parity_failure_writes_nothing(release, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.merging import streaming
    from pipeline.merging.delta import merge_tensor

    config, layout = release()
    make_adapter(tiny_model_path, layout.adapter_dir, r=4, lora_alpha=8, target_modules=ATTN)

    def wrong_scaling(weight: torch.Tensor, edit: Any, out_dtype: Any = None) -> torch.Tensor:
        edit.scaling *= 2  # a classic merge bug: alpha/r applied twice
        return merge_tensor(weight, edit, out_dtype)

    monkeypatch.setattr(streaming, "merge_tensor", wrong_scaling)
    with pytest.raises(StageFailed, match="parity failed"):
        run_stage("merge", config, layout)
    assert_nothing_written(layout)


def test_bf16_parity_gate_catches_wrong_scaling(
    release, bases: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.merging import streaming
    from pipeline.merging.delta import merge_tensor

    config, layout = release({"model": {"base_model": str(bases["bf16"]), "dtype": "auto"}})
    # A realistic adapter: with dW << W, applying alpha/r twice doubles the adapter's effect on the logits.
    make_adapter(bases["bf16"], layout.adapter_dir, scale=0.02, r=4, lora_alpha=8, target_modules=ATTN)

    def wrong_scaling(weight: torch.Tensor, edit: Any, out_dtype: Any = None) -> torch.Tensor:
        edit.scaling *= 2
        return merge_tensor(weight, edit, out_dtype)

    monkeypatch.setattr(streaming, "merge_tensor", wrong_scaling)
    with pytest.raises(StageFailed, match=r"logit difference / adapter effect"):
        run_stage("merge", config, layout)
    assert_nothing_written(layout)


# --------------------------------------------------------------------------- refusals
def test_refuses_missing_adapter(release) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app

    config, layout = release()
    result = CliRunner().invoke(app, ["merge", config.name])
    assert result.exit_code == 2
    assert "No adapter to merge" in result.output and "pubctl train" in result.output
    assert_nothing_written(layout)


def test_refuses_quantized_base(release, tiny_model_path: Path, tmp_path: Path) -> None:

    quantized = tmp_path / "quantized"
    shutil.copytree(tiny_model_path, quantized)
    config_json = json.loads((quantized / "config.json").read_text())
    config_json["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (quantized / "config.json").write_text(json.dumps(config_json))
    config, layout = release({"model": {"base_model": str(quantized)}})
    make_adapter(tiny_model_path, layout.adapter_dir, r=4, lora_alpha=8, target_modules=ATTN)
    with pytest.raises(UsageError, match=r"quantized \(bitsandbytes 4-bit.*unquantized base.*merge.dequantize"):
        run_stage("merge", config, layout)
    assert_nothing_written(layout)

    # asked to dequantize: the quantization library is needed; without it, a clear error, still nothing written
    config, layout = release({"model": {"base_model": str(quantized)}, "merge": {"dequantize": True}}, name="m2")
    make_adapter(tiny_model_path, layout.adapter_dir, r=4, lora_alpha=8, target_modules=ATTN)
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        with pytest.raises(UsageError, match="dequantize"):
            run_stage("merge", config, layout)
        assert_nothing_written(layout)


def test_refuses_adapter_of_another_base(release, tiny_model_path: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    other = tmp_path / "other"
    wide = Qwen3Config(**{**json.loads((tiny_model_path / "config.json").read_text()), "hidden_size": 96})
    Qwen3ForCausalLM(wide).save_pretrained(other)
    AutoTokenizer.from_pretrained(tiny_model_path).save_pretrained(other)
    config, layout = release()
    make_adapter(other, layout.adapter_dir, r=4, lora_alpha=8, target_modules=ATTN)
    with pytest.raises(UsageError, match="trained on another base"):
        run_stage("merge", config, layout)
    assert_nothing_written(layout)


def test_refuses_adapter_recorded_for_another_builtin(release, tiny_model_path: Path) -> None:

    config, layout = release()
    make_adapter(tiny_model_path, layout.adapter_dir, r=4, lora_alpha=8, target_modules=ATTN)
    adapter_config = json.loads((layout.adapter_dir / "adapter_config.json").read_text())
    adapter_config["base_model_name_or_path"] = "/somewhere/runs/_cache/builtin/tiny-qwen3-0000000000000000"
    (layout.adapter_dir / "adapter_config.json").write_text(json.dumps(adapter_config))
    with pytest.raises(UsageError, match="was trained on"):
        run_stage("merge", config, layout)
    assert_nothing_written(layout)


def test_refuses_vocabulary_mismatch(release, tiny_model_path: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # trained after adding tokens: resized embeddings saved in the adapter
    config, layout = release()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    tokenizer.add_tokens(["<tool_call>", "</tool_call>"], special_tokens=True)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    peft_model = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"], modules_to_save=["embed_tokens"])
    )
    peft_model.save_pretrained(layout.adapter_dir)
    tokenizer.save_pretrained(layout.adapter_dir)
    with pytest.raises(UsageError, match="Vocabulary size mismatch"):
        run_stage("merge", config, layout)
    assert_nothing_written(layout)

    # only the tokenizer grew: ids without embedding rows
    config, layout = release(name="m2")
    make_adapter(tiny_model_path, layout.adapter_dir, r=4, lora_alpha=8, target_modules=ATTN)
    tokenizer.save_pretrained(layout.adapter_dir)
    with pytest.raises(UsageError, match=r"Vocabulary size mismatch: the tokenizer"):
        run_stage("merge", config, layout)
    assert_nothing_written(layout)


def test_refuses_what_streaming_does_not_implement(release, tiny_model_path: Path) -> None:

    config, layout = release()
    make_adapter(
        tiny_model_path,
        layout.adapter_dir,
        r=4,
        lora_alpha=8,
        target_modules=["q_proj"],
        trainable_token_indices=[3, 4],
    )
    with pytest.raises(UsageError, match=r"merge\.strategy: peft"):
        run_stage("merge", config, layout)
    assert_nothing_written(layout)


@pytest.mark.parametrize(
    ("recorded", "identity"),
    [
        ("/root/.cache/huggingface/hub/models--Qwen--Qwen3-0.6B/snapshots/c1899de2/", "hub:qwen/qwen3-0.6b"),
        ("Qwen/Qwen3-0.6B", "hub:qwen/qwen3-0.6b"),
        ("/work/runs/_cache/builtin/tiny-qwen3-1af13f595edff86f", "builtin:tiny-qwen3-1af13f595edff86f"),
        ("./my-local-model-folder/", None),
        (None, None),
    ],
)
def test_base_identity(recorded: str | None, identity: str | None) -> None:
    from pipeline.merging.refusals import _identity

    assert _identity(recorded) == identity


def test_written_config_names_the_merged_dtype_under_both_keys(tmp_path: Path) -> None:
    """A base config with the pre-v5 torch_dtype key gets the merged dtype there too, not the base's."""
    from types import SimpleNamespace

    from pipeline.stages.merge import _write_config

    base = SimpleNamespace(
        config={"torch_dtype": "bfloat16", "tie_word_embeddings": True, "text_config": {"torch_dtype": "bfloat16"}},
        folder=tmp_path,
    )
    out = tmp_path / "out"
    out.mkdir()
    _write_config(base, out, True, "float32")  # type: ignore[arg-type]
    written = json.loads((out / "config.json").read_text())
    assert (written["dtype"], written["torch_dtype"], written["text_config"]["torch_dtype"]) == ("float32",) * 3
    assert written["tie_word_embeddings"] is False and written["text_config"]["tie_word_embeddings"] is False


@pytest.mark.parametrize(
    ("config", "index"), [("{damaged", None), ("{}", '{"metadata": {}}'), ("[]", None)], ids=["config", "index", "list"]
)
def test_damaged_model_json_is_a_usage_error(config: str, index: str | None, tmp_path: Path) -> None:
    """A damaged config.json or shard index is reported as the user's input (exit 2), not a traceback."""
    from pipeline.errors import UsageError

    (tmp_path / "config.json").write_text(config)
    if index is not None:
        (tmp_path / SAFE_INDEX).write_text(index)
    with pytest.raises(UsageError, match=r"(not valid JSON|no weight_map|expected a JSON object)"):
        Checkpoint.read(tmp_path)


def test_corrupt_record_fails_before_the_merged_model_is_written(release, tiny_model_path: Path) -> None:
    """A results.json that cannot be updated stops the stage before it replaces runs/NAME/merge."""
    from pipeline.errors import PubctlError

    config, layout = release()
    make_adapter(tiny_model_path, layout.adapter_dir, r=4, lora_alpha=8, target_modules=ATTN)
    layout.results.parent.mkdir(parents=True, exist_ok=True)
    layout.results.write_text("{not json")
    with pytest.raises(PubctlError, match="corrupt results record"):
        run_stage("merge", config, layout)
    assert not layout.merge_dir.exists()
    assert list(layout.run_dir.glob(".merge-*")) == []
    assert layout.results.read_text() == "{not json"


@pytest.mark.parametrize(
    ("base", "chat_end", "expected"),
    [
        ([151645, 151643], 151645, [151645, 151643]),  # Qwen3: both kept, order kept
        ([151643], 151645, [151645, 151643]),  # a base list without the chat end gets it in front
        (151643, 151645, [151645, 151643]),
        (151645, 151645, 151645),  # a single id stays an int, as transformers writes it
        (None, 151645, 151645),
    ],
)
def test_generation_stop_tokens_keep_the_base_list(base: object, chat_end: int, expected: object) -> None:
    from pipeline.stages.merge import stop_tokens

    assert stop_tokens(base, chat_end) == expected
