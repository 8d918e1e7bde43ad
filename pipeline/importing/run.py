"""``pubctl import NAME``: the record of a release whose training and evaluation ran outside pubctl.

Import stands in for train, merge and evaluate; it is not a link of the chain (``pubctl release`` would train
anew). It owns the sections those three write, and writes them all at once through the one door a stage
uses (pipeline.stage.write_sections): a section the import has nothing for is removed rather than left
describing an earlier run. Everything is read, copied into a staging folder and measured before anything is
moved into runs/NAME/ or the record changes, so a refused import leaves the release as it was. The stamps of
train, merge and evaluate are forgotten: what they describe is no longer the record's.

The card (``pubctl card``), the gates (``pubctl check``) and the push then run as for any release.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import lineage as lineage_of
from pipeline.atomic import normalise_modes, private_to_normal
from pipeline.errors import UsageError
from pipeline.hashing import sha256_file, tree_digest
from pipeline.importing import model as models
from pipeline.importing.evaluation import evaluation_section
from pipeline.importing.files import model_files
from pipeline.importing.training import state_file, training_section
from pipeline.provenance import collect
from pipeline.record_validation import sections_problem
from pipeline.results import EvaluationRecord, read_or_new
from pipeline.stage import DeclaredStage, StageResult, write_sections
from pipeline.stamps import remove_stamp

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig
    from pipeline.layout import Layout

IMPORT = DeclaredStage(
    name="import",
    owns=("training", "model", "merge", "evaluation", "provenance"),
    config_fields=("import_",),
    entry="pipeline.importing.run:run",
    packages=(),
)
"""The import's declaration, for write_sections' ownership rule; not in pipeline.stages.STAGES (not in the chain)."""
REPLACED_STAGES = ("train", "merge", "evaluate")


def run(config: ReleaseConfig, layout: Layout) -> StageResult:
    """Import what ``config.import_`` names; holds the release's lock, writes the record, returns the summary."""
    from pipeline.console import StageOutput
    from pipeline.release import one_release_at_a_time, report_result

    # Counting the data (datasets) and measuring parity (transformers) print bars and warnings: they go to the
    # import's log, as a stage's do, and the summary ends it.
    output = StageOutput(
        "import",
        layout.logs_dir / "import.log",
        header=f"pubctl import {config.name}",
        libraries=("datasets", "transformers", "huggingface_hub", "peft"),
        quiet_bars=True,
    )
    with one_release_at_a_time(layout, "import"):
        with output:
            result = build(config, layout)
        write_sections(layout, IMPORT, config, result.sections)
        for stage in REPLACED_STAGES:
            remove_stamp(layout.stamps_dir, stage)
    report_result(IMPORT, result, output, layout)
    return result


def build(config: ReleaseConfig, layout: Layout) -> StageResult:
    given = config.import_
    if not given.given:
        raise UsageError(
            f"{config.path or config.name}: no import section names anything to import; add `import:` with "
            "adapter, merged_model, trainer_state, lm_eval and/or lm_eval_base (README: pubctl import)."
        )
    missing = given.missing(layout.root)
    if missing:
        raise UsageError(f"nothing to import at {'; '.join(missing)} (no such file or folder).")
    read_or_new(layout.results, config.name)  # a corrupt record fails now, before anything is copied
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    staging = private_to_normal(Path(tempfile.mkdtemp(prefix=".import-", dir=layout.run_dir)))
    try:
        return _build(config, layout, staging)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)


def _build(config: ReleaseConfig, layout: Layout, staging: Path) -> StageResult:
    given, root = config.import_, layout.root
    staged = models.Staged()
    adapter_dir, model_dir = given.resolved("adapter", root), given.resolved("merged_model", root)
    if adapter_dir is not None:
        models.stage_adapter(adapter_dir, staging, staged)
    training = None
    if given.trainer_state is not None:
        state = state_file(given.resolved("trainer_state", root))
        training = training_section(config, layout, state, staged.adapter_config)
    evaluation = scored = None
    if given.lm_eval is not None:
        lm_eval, lm_eval_base = given.resolved("lm_eval", root), given.resolved("lm_eval_base", root)
        evaluation, scored = evaluation_section(config, root, lm_eval, lm_eval_base)
    model = merge = None
    if model_dir is not None:
        models.stage_model(model_dir, staging, staged)
        model = models.model_section(config, layout, staged)
        if staged.adapter is not None:
            merge = models.merge_section(config, layout, staged, model)
            shutil.copytree(staged.adapter, staging / "merge" / "adapter")
    if training is not None and staged.adapter is not None:
        # The base trained on is the one the adapter was merged into (the merge checked the adapter names it).
        consumed = {"base_model": merge.lineage.consumed["base_model"]} if merge and merge.lineage else {}
        training.lineage = lineage_of.lineage(consumed, {"adapter": staged.adapter_digest})
    if evaluation is not None:
        evaluation.lineage = lineage_of.lineage(_scored(scored, staged))
    sections: dict[str, Any] = {"training": training, "model": model, "merge": merge, "evaluation": evaluation}
    sections["provenance"] = collect(config, root)
    problem = sections_problem({name: section for name, section in sections.items() if section is not None})
    if problem:
        raise UsageError(
            f"import: the imported files make a record no pubctl command could read back ({problem}); nothing was "
            "written. Check the file that holds that number."
        )
    # Everything read and measured: only now does anything move into runs/NAME/ and the record.
    normalise_modes(staging)
    models.replace(layout.adapter_dir, staged.adapter)
    models.replace(layout.merge_dir, staging / "merge" if staged.model is not None else None)
    return StageResult(summary=_summary(config, sections, staged), sections=sections)


def _scored(named: str | None, staged: models.Staged) -> dict[str, str]:
    """The digest of the model lm-eval says it scored, when that folder is on this machine: the lineage gate and
    imported_scored_model compare it with the model the record publishes."""
    folder = Path(named).expanduser() if named else None
    if folder is None or not folder.is_dir():
        return {}
    if (
        staged.model_source is not None
        and staged.files is not None
        and folder.resolve() == staged.model_source.resolve()
    ):
        return {"merged_model": lineage_of.files_digest(staged.files)}  # the folder just copied and hashed
    files = model_files(folder, "model folder lm-eval scored")
    return {"merged_model": tree_digest((p.relative_to(folder).as_posix(), sha256_file(p)) for p in files) or "missing"}


def _summary(config: ReleaseConfig, sections: dict[str, Any], staged: models.Staged) -> str:
    imported = [
        name for name, value in sections.items() if getattr(value, "origin", None) and value.origin.kind == "imported"
    ]
    measured = [
        name for name, value in sections.items() if getattr(value, "origin", None) and value.origin.kind == "measured"
    ]
    evaluation: EvaluationRecord | None = sections["evaluation"]
    gaps = len(evaluation.origin.gaps) if evaluation is not None and evaluation.origin else 0
    parts = [f"imported {', '.join(imported) or 'no section'}", f"measured {', '.join(measured) or 'no section'}"]
    if gaps:
        parts.append(f"{gaps} gap{'s' if gaps > 1 else ''} in the lm-eval output (see pubctl check)")
    nxt = f"pubctl card {config.name}, then pubctl check {config.name}"
    if staged.adapter is not None and staged.model is None:
        nxt = f"pubctl merge {config.name} (the adapter is in place), then {nxt}"
    return f"{'; '.join(parts)}. Next: {nxt}."
