"""The push stage: one atomic Hub commit per repository, nothing unchanged re-sent, a plan you can read first.

huggingface_hub does every request; nothing here speaks HTTP.

- ``stage``: the stage entry :func:`run` (returns a StageResult for the chain) and :func:`publish`
  (the push itself, returning the :class:`PushPlan`): gates, files, plan or commit, the plan file.
- ``files``: the local files published (card bundle, merged model, adapter).
- ``adapter``: the adapter repository's card, rendered by the model card's template machinery.
- ``plan``: the plan types, the diff against the Hub's tree, what pubctl may delete.
- ``release_files``: what push makes for the model repository: ``pubctl.yaml`` (the config) and
  ``.eval_results/pubctl.yaml`` (pipeline.eval_results).
- ``publish``: the commit of one repository (create repo/branch, operations, commit, read-back, tag, errors).
- ``readback``: the commit read back from the Hub and compared with the plan; a card-only push's model check.
- ``output``: what a push prints.
"""

from __future__ import annotations

from pipeline.hub_client import scrub
from pipeline.stages.push.adapter import adapter_card
from pipeline.stages.push.plan import PushOptions, PushPlan, TargetPlan
from pipeline.stages.push.stage import publish, run

__all__ = ["PushOptions", "PushPlan", "TargetPlan", "adapter_card", "publish", "run", "scrub"]
