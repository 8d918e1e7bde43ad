"""The ``evaluation`` section from lm-eval's own output (``lm_eval --output_path OUT --log_samples``).

lm-eval's CLI writes OUT/<model>/results_<date>.json and, with --log_samples, samples_<task>_<date>.jsonl beside
it. Its results file is the dictionary ``simple_evaluate`` returns, so pubctl reads it with the converter the
evaluate stage uses (pipeline.evaluation.scores.benchmark_results): the same metric, stderr, n and chance for
the same output. What the output lacks or qualifies (a --limit run, no n-samples, no stderr, a base scored on
other items) is recorded as the section's gaps, which the ``imported_complete`` gate fails on.
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from pipeline.errors import PubctlError, UsageError
from pipeline.evaluation.harness import HARNESS, HarnessSettings
from pipeline.evaluation.scores import _leaves, attach_base, benchmark_results
from pipeline.hashing import visible_files
from pipeline.importing.declared import written
from pipeline.importing.files import ReadFile, read_json, read_jsonl, shown
from pipeline.origin import Origin, SourceFile
from pipeline.record_validation import describe_errors
from pipeline.refs import ModelRef, excerpt
from pipeline.results import BenchmarkResult, EvaluatedBase, EvaluationRecord, EvaluationSettings

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig, TaskSpec

SHOWN = 5
"""Candidate files an error lists."""


def results_file(path: Path, label: str) -> Path:
    """lm-eval's results_*.json itself, or the one file of that name under the --output_path folder."""
    if not path.is_dir():
        return path
    # Hidden names below ``path`` only: the user's own prefix (`../out`, `~/.cache/...`) is not lm-eval's output.
    found = [p for p in visible_files(path) if fnmatch(p.name, "results_*.json")]
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(f"import.{label}: no lm-eval results_*.json under {path} (lm-eval --output_path writes one).")
    more = f" and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
    listed = ", ".join(str(p) for p in found[:SHOWN]) + more
    raise UsageError(f"import.{label}: {path} holds {len(found)} lm-eval results files ({listed}); name one.")


def model_args(results: dict[str, Any]) -> dict[str, Any]:
    """lm-eval's model_args as a mapping (older versions record the CLI string ``pretrained=X,dtype=Y``)."""
    args = (results.get("config") or {}).get("model_args")
    if isinstance(args, str):
        return dict(part.split("=", 1) for part in args.split(",") if "=" in part)
    return args if isinstance(args, dict) else {}


def scored_model(results: dict[str, Any]) -> str | None:
    """The model lm-eval scored, as its output names it (a folder or a Hub id)."""
    pretrained = model_args(results).get("pretrained")
    return pretrained if isinstance(pretrained, str) else None


class LmEvalOutput:
    """One lm-eval run's results file with its samples, read and checked."""

    def __init__(self, path: Path, label: str) -> None:
        self.label, self.given = label, path
        self.path = results_file(path, label)
        self.results, self.file = read_json(self.path, f"lm-eval results ({label})")
        self.samples: list[ReadFile] = []
        self._check()
        self._read_samples()

    def _check(self) -> None:
        wrong = [key for key in ("results", "configs") if not isinstance(self.results.get(key), dict)]
        if not isinstance(self.results.get("lm_eval_version"), str):
            wrong.append("lm_eval_version")
        if not wrong:  # each task's entry is a mapping in lm-eval's output; anything else would be read as one
            wrong = [
                f"{key}.{task}"
                for key in ("results", "configs")
                for task, entry in self.results[key].items()
                if not isinstance(entry, dict)
            ][:5]
        if wrong:
            raise UsageError(
                f"import.{self.label}: {self.path} is not lm-eval output (missing or wrong: {', '.join(wrong)}); "
                "name the results_*.json that lm-eval --output_path wrote."
            )

    def _read_samples(self) -> None:
        """samples_<task>_<date>.jsonl beside results_<date>.json, as lm-eval --log_samples names them."""
        stamp = self.path.stem.removeprefix("results_")
        samples: dict[str, list[dict[str, Any]]] = {}
        for task in self.results["configs"]:
            candidate = self.path.parent / f"samples_{task}_{stamp}.jsonl"
            if stamp != self.path.stem and candidate.exists():
                samples[task], read = read_jsonl(candidate, f"lm-eval samples ({self.label})")
                self.samples.append(read)
        self.results["samples"] = samples

    @property
    def limit(self) -> int | float | None:
        return self._config_number("limit")

    def _config_number(self, key: str) -> int | float | None:
        """A number of lm-eval's run config, None when not recorded; text ("1") would hide a --limit run."""
        value = (self.results.get("config") or {}).get(key)
        if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            return value
        raise UsageError(f"import.{self.label}: {self.path}: config.{key} is {excerpt(value)}, not a number.")

    def settings(self) -> HarnessSettings:
        config = self.results.get("config") or {}
        iters = self._config_number("bootstrap_iters")
        return HarnessSettings(
            device=config.get("device"),
            batch_size=config.get("batch_size"),
            limit=self.limit,
            bootstrap_iters=iters if isinstance(iters, int) else 0,
            seed=config.get("random_seed"),
        )

    def check_tasks(self, specs: list[TaskSpec]) -> None:
        """Every configured task is in the output, at the configured few-shot count."""
        absent = [spec.name for spec in specs if spec.name not in self.results["results"]]
        if absent:
            held = ", ".join(sorted(self.results["results"])) or "none"
            raise UsageError(
                f"import.{self.label}: {self.path} has no result for {', '.join(absent)} (it has: {held}); list in "
                "evaluation.tasks the tasks lm-eval ran, with their metric and num_fewshot."
            )
        shots = self.results.get("n-shot") or {}
        for spec in specs:
            ran = shots.get(spec.name)
            if isinstance(ran, int) and ran != spec.num_fewshot:
                raise UsageError(
                    f"import.{self.label}: lm-eval ran {spec.name} {ran}-shot ({self.path}) but evaluation.tasks says "
                    f"num_fewshot {spec.num_fewshot}; set it to {ran}."
                )

    def count_items(self, specs: list[TaskSpec], gaps: list[str]) -> None:
        """n-samples for every scored leaf task; where lm-eval's output has none, the logged samples counted."""
        counts = self.results.setdefault("n-samples", {})
        if not isinstance(counts, dict):
            raise UsageError(f"import.{self.label}: {self.path}: n-samples is not a mapping of tasks.")
        for spec in specs:
            for leaf in _leaves(self.results, spec.name):
                entry = counts.get(leaf)
                if isinstance(entry, dict) and isinstance(entry.get("effective"), int):
                    original = entry.get("original")
                    if isinstance(original, int) and entry["effective"] < original and self.limit is None:
                        gaps.append(f"{self.label} {leaf}: scored {entry['effective']} of {original} items")
                    continue
                rows = self.results["samples"].get(leaf)
                if rows is None:
                    raise UsageError(
                        f"import.{self.label}: {self.path} says neither how many items of {leaf} were scored "
                        "(no n-samples) nor which (no samples file): re-run lm-eval with --log_samples."
                    )
                counts[leaf] = {"effective": len(rows)}  # pubctl's count of the items lm-eval logged
                gaps.append(f"{self.label} {leaf}: no n-samples in the lm-eval output (n counted from its samples)")

    def scores(self, specs: list[TaskSpec], root: Path, gaps: list[str]) -> list[BenchmarkResult]:
        self.check_tasks(specs)
        self.count_items(specs, gaps)
        if self.limit is not None:
            gaps.append(f"{self.label}: lm-eval ran with --limit {self.limit} (a subset of every task)")
        try:
            rows = benchmark_results(self.results, specs, root, self.settings())
        except PubctlError as exc:  # the converter's words, about this file
            raise UsageError(f"import.{self.label}: {self.path}: {exc}") from None
        except ValidationError as exc:
            raise UsageError(
                f"import.{self.label}: {self.path}: {describe_errors(exc.errors(include_url=False))}."
            ) from None
        # Shapes lm-eval never writes (a list where it writes a mapping) that the checks above do not reach.
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise UsageError(
                f"import.{self.label}: {self.path} is not lm-eval output pubctl can read ({type(exc).__name__}: {exc})."
            ) from None
        gaps.extend(f"{self.label} {row.task}: no {row.metric} stderr" for row in rows if row.stderr is None)
        return rows

    def sources(self, root: Path) -> list[SourceFile]:
        role = f"lm-eval samples ({self.label})"
        return [
            SourceFile(role=role, path=shown(read.path, root, self.label, self.given), sha256=read.sha256)
            for read in self.samples
        ]


def _public_reference(scored: str | None, config: ReleaseConfig, root: Path) -> str:
    """The base lm-eval scored, as the published record may name it: a Hub id as it is; a local folder (lm-eval's
    ``pretrained=/home/alice/...``) by the base the config declares, else by the folder's name alone."""
    if scored is None:
        return "not recorded"
    try:
        hub = ModelRef.parse(scored, root).is_hub
    except PubctlError:  # not a reference pubctl can parse: shown by its last part, as a folder would be
        hub = False
    if hub:
        return scored
    declared = written(config, "model.base_model")
    name = PurePath(scored).name or "model"
    return f"{declared} (local copy {name})" if declared else f"local folder {name}"


def _dtype(output: LmEvalOutput) -> str | None:
    dtype = model_args(output.results).get("dtype") or (output.results.get("config") or {}).get("model_dtype")
    return str(dtype).removeprefix("torch.") if dtype else None


def _compare(tuned: list[BenchmarkResult], base: list[BenchmarkResult], gaps: list[str]) -> None:
    attach_base(tuned, base)
    for mine, theirs in zip(tuned, base, strict=True):
        if (theirs.n, theirs.limit) != (mine.n, mine.limit):
            gaps.append(f"lm_eval_base {mine.task}: base scored on {theirs.n} items, the tuned model on {mine.n}")


def evaluation_section(
    config: ReleaseConfig, root: Path, tuned_path: Path, base_path: Path | None
) -> tuple[EvaluationRecord, str | None]:
    """The evaluation section from lm-eval's output for the tuned model (and the base, when given), and the model
    that output says it scored."""
    specs = list(config.evaluation.tasks)
    gaps: list[str] = []
    tuned = LmEvalOutput(tuned_path, "lm_eval")
    rows = tuned.scores(specs, root, gaps)
    also_read = tuned.sources(root)
    evaluated_base = None
    if base_path is not None:
        base = LmEvalOutput(base_path, "lm_eval_base")
        _compare(rows, base.scores(specs, root, gaps), gaps)
        base_file = SourceFile(
            role="lm-eval results (lm_eval_base)",
            path=shown(base.path, root, base.label, base.given),
            sha256=base.file.sha256,
        )
        also_read += [base_file, *base.sources(root)]
        config_of_base = base.results.get("config") or {}
        evaluated_base = EvaluatedBase(
            reference=_public_reference(scored_model(base.results), config, root),
            revision=config_of_base.get("model_sha") or None,
        )
    settings = tuned.settings().as_dict()
    del settings["trust_remote_code"]  # pubctl's own option, not something lm-eval's output records
    try:
        record = EvaluationRecord(
            harness=HARNESS,
            harness_version=tuned.results["lm_eval_version"],
            results=rows,
            settings=EvaluationSettings(**settings, dtype=_dtype(tuned)),
            base_model=evaluated_base,
            origin=Origin(
                kind="imported",
                file=shown(tuned.path, root, tuned.label, tuned.given),
                sha256=tuned.file.sha256,
                also_read=also_read,
                gaps=gaps,
            ),
        )
    except ValidationError as exc:
        raise UsageError(
            f"import.lm_eval: {tuned.path} does not make an evaluation record: "
            f"{describe_errors(exc.errors(include_url=False))}."
        ) from None
    return record, scored_model(tuned.results)
