"""Peak memory and wall time of the streaming merge against peft's merge_and_unload.

    python benchmarks/merge_memory.py [--layers 12] [--hidden 1024] [--shard 150MB] [--dtype float32]

Builds (in a temp folder) a randomly initialised Qwen3-architecture model of at least 150M
parameters saved in several safetensors shards, and a LoRA adapter for it (r=16 on every
linear layer, factors randomised so the merge is not a no-op). Then each merge runs in its
own fresh interpreter, one after the other, and reports its peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, which includes the libraries it imports) and
the wall time of the merge itself (reading, merging and writing; imports excluded):

- streaming: pubctl's ``merge_streaming`` (torch + safetensors only, one output shard at a time);
- peft: ``PeftModel.from_pretrained(base, adapter).merge_and_unload()`` + ``save_pretrained``
  (pubctl's ``merge.strategy: peft``).

Finally a third process loads adapter-on-base and both merged models (in float32, as the
stage's parity check does) and reports the largest |logit difference| on fixed token ids, and
the largest |weight difference| between the two merges.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def build(folder: Path, layers: int, hidden: int, shard: str, dtype: str) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    heads = hidden // 64
    config = Qwen3Config(
        vocab_size=32000,
        hidden_size=hidden,
        intermediate_size=int(hidden * 2.75),
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 2),
        head_dim=64,
        tie_word_embeddings=True,
        dtype=dtype,
    )
    model = Qwen3ForCausalLM(config).to(getattr(torch, dtype))
    parameters = model.num_parameters()
    model.save_pretrained(folder / "base", max_shard_size=shard)
    peft_model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=TARGETS))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_" in name:
                param.normal_(0, 0.02)
    peft_model.save_pretrained(folder / "adapter")
    shards = sorted(p.name for p in (folder / "base").glob("*.safetensors"))
    adapter_bytes = (folder / "adapter" / "adapter_model.safetensors").stat().st_size
    return {"parameters": parameters, "base_shards": len(shards), "adapter_mib": adapter_bytes / 2**20}


def child(strategy: str, folder: Path, shard: str) -> dict:
    """Runs in a fresh interpreter: one merge, its peak RSS and wall time."""
    if strategy == "streaming":
        import huggingface_hub  # noqa: F401 - what the streaming merge imports, counted before the merge
        import safetensors.torch  # noqa: F401
        import torch  # noqa: F401

        from pipeline.merging.adapter import load_adapter
        from pipeline.merging.checkpoint import Checkpoint
        from pipeline.merging.streaming import merge_streaming

        after_imports = peak_rss_mib()
        start = time.perf_counter()
        out = folder / "streaming"
        merge_streaming(Checkpoint.read(folder / "base"), load_adapter(folder / "adapter"), out, shard)
        wall = time.perf_counter() - start
        shutil.copy2(folder / "base" / "config.json", out / "config.json")
    else:
        import peft  # noqa: F401 - what the peft merge imports, counted before the merge
        import transformers  # noqa: F401

        from pipeline.merging.reference import merge_with_peft

        after_imports = peak_rss_mib()
        start = time.perf_counter()
        merge_with_peft(folder / "base", folder / "adapter", folder / "peft", shard)
        wall = time.perf_counter() - start
    return {
        "strategy": strategy,
        "peak_rss_mib": peak_rss_mib(),
        "rss_after_imports_mib": after_imports,
        "wall_s": wall,
    }


def parity(folder: Path) -> dict:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = torch.randint(0, 32000, (4, 32), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        # float32 compute, as the stage's parity check: what the merge lost, not bfloat16 arithmetic noise
        load = lambda path: AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)  # noqa: E731
        reference = PeftModel.from_pretrained(load(folder / "base"), folder / "adapter")
        expected = reference(input_ids=ids).logits
        del reference
        logits = {}
        for name in ("streaming", "peft"):
            logits[name] = load(folder / name)(input_ids=ids).logits
    from safetensors import safe_open

    from pipeline.merging.checkpoint import Checkpoint

    ours, theirs = Checkpoint.read(folder / "streaming"), Checkpoint.read(folder / "peft")
    assert set(ours.tensors) == set(theirs.tensors), "the two merges wrote different tensors"
    weight_diff = 0.0
    for name, info in ours.tensors.items():
        with (
            safe_open(folder / "streaming" / info.file, "pt") as a,
            safe_open(folder / "peft" / theirs.tensors[name].file, "pt") as b,
        ):
            weight_diff = max(weight_diff, (a.get_tensor(name).float() - b.get_tensor(name).float()).abs().max().item())
    return {
        "parity_streaming": (logits["streaming"] - expected).abs().max().item(),
        "parity_peft": (logits["peft"] - expected).abs().max().item(),
        "max_weight_diff_streaming_vs_peft": weight_diff,
    }


def run_child(args: list[str]) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--shard", default="150MB", help="shard size of the base and of both merged outputs")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--child", choices=["build", "streaming", "peft", "parity"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        if args.child == "build":
            result = build(args.folder, args.layers, args.hidden, args.shard, args.dtype)
        elif args.child == "parity":
            result = parity(args.folder)
        else:
            result = child(args.child, args.folder, args.shard)
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(prefix="pubctl-merge-bench-") as tmp:
        folder = Path(tmp)
        common = ["--folder", str(folder), "--shard", args.shard]
        built = run_child(
            [
                "--child",
                "build",
                "--layers",
                str(args.layers),
                "--hidden",
                str(args.hidden),
                "--dtype",
                args.dtype,
                *common,
            ]
        )
        if built["parameters"] < 150_000_000:
            raise SystemExit(f"model has {built['parameters']:,} parameters; use --layers/--hidden for >= 150M")
        print(
            f"model: Qwen3 {built['parameters']:,} parameters, {args.dtype}, {built['base_shards']} shards "
            f"of <= {args.shard}; adapter r=16 on {', '.join(TARGETS)} ({built['adapter_mib']:.1f} MiB)"
        )
        peft = run_child(["--child", "peft", *common])
        streaming = run_child(["--child", "streaming", *common])
        checks = run_child(["--child", "parity", *common])
    for result in (streaming, peft):
        print(
            f"{result['strategy']:>9}: peak RSS {result['peak_rss_mib']:8.1f} MiB "
            f"(after imports {result['rss_after_imports_mib']:.1f} MiB), merge wall time {result['wall_s']:.2f} s"
        )
    print(f"peak RSS ratio streaming/peft: {streaming['peak_rss_mib'] / peft['peak_rss_mib']:.3f}")
    print(f"wall time ratio streaming/peft: {streaming['wall_s'] / peft['wall_s']:.3f}")
    print(
        f"parity max |logit diff| vs adapter-on-base: streaming {checks['parity_streaming']:.3g}, "
        f"peft {checks['parity_peft']:.3g}"
    )
    print(f"max |weight diff| streaming vs peft: {checks['max_weight_diff_streaming_vs_peft']:.3g}")


if __name__ == "__main__":
    main()
