"""Merging a peft LoRA adapter into its base model.

- :mod:`pipeline.merging.adapter` reads a saved adapter into per-tensor edits.
- :mod:`pipeline.merging.delta` holds the LoRA / rsLoRA / DoRA merge arithmetic.
- :mod:`pipeline.merging.streaming` applies the edits shard by shard (the default strategy).
- :mod:`pipeline.merging.reference` is peft's own ``merge_and_unload`` (the reference strategy).
- :mod:`pipeline.merging.refusals` turns inputs that cannot be merged honestly into clear errors.
- :mod:`pipeline.merging.parity` compares logits of the merged model with adapter-on-base.
- :mod:`pipeline.merging.facts` measures the saved files (sizes, sha256, parameters, dtype).

The streaming path imports only torch and safetensors (no transformers, no peft), so its
memory is the shard being written plus the adapter, not a whole model plus libraries.
"""
