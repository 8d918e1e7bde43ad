"""lm-eval task folders and task metadata: the bundled offline tasks, user include paths, chance levels.

The bundled demo tasks (pipeline/demo/tasks/) are lm-eval task YAMLs that include lm-eval's own hellaswag,
truthfulqa_mc2 and mmlu configs and point them at small local JSONL files. lm-eval resolves relative
``data_files`` against the working directory, not the YAML's folder, and has no way to name a file in its
own installed tasks folder, so pubctl writes a resolved copy of the folder at run time: ``lm_eval:`` includes
become absolute paths into the installed lm_eval/tasks, and relative data files become absolute paths next
to the YAML. That copy is a plain lm-eval include folder: ``lm_eval --include_path`` reads it as it is.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import BUILTIN_TASKS
from pipeline.errors import UsageError
from pipeline.hashing import inside_regular_file, sha256_file
from pipeline.refs import project_path

LM_EVAL_INCLUDE = "lm_eval:"
"""Prefix of an include that names a file in the installed lm_eval/tasks folder."""
LOCAL_DATASET_BUILDERS = ("json", "csv", "parquet", "text", "arrow")
"""datasets' packaged builders: dataset_path is a loader, the data lives in data_files."""


class FunctionRef(str):
    """A ``!function module.name`` reference, kept as text so a rewritten YAML still carries the tag."""


class _TaskLoader(yaml.SafeLoader):
    pass


class _TaskDumper(yaml.SafeDumper):
    pass


_TaskLoader.add_constructor("!function", lambda loader, node: FunctionRef(loader.construct_scalar(node)))
_TaskDumper.add_representer(FunctionRef, lambda dumper, ref: dumper.represent_scalar("!function", str(ref)))


def builtin_tasks_dir() -> Path:
    from pipeline.demo import TASKS_DIR

    return TASKS_DIR


def lm_eval_tasks_dir() -> Path:
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).resolve().parent


def _read_task_yaml(path: Path) -> dict[str, Any]:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_TaskLoader)  # a SafeLoader subclass: safe
    if not isinstance(data, dict):
        raise UsageError(f"{path}: an lm-eval task file holds a mapping, found {type(data).__name__}.")
    return data


def _resolve_includes(data: dict[str, Any], path: Path) -> None:
    includes = data.get("include")
    if includes is None:
        return
    resolved = []
    for include in includes if isinstance(includes, list) else [includes]:
        if isinstance(include, str) and include.startswith(LM_EVAL_INCLUDE):
            target = lm_eval_tasks_dir() / include[len(LM_EVAL_INCLUDE) :]
            if not target.is_file():
                raise UsageError(
                    f"{path}: include {include!r} names {target}, which this lm-eval installation does not have "
                    "(the bundled demo tasks mirror lm-eval's own task configs; check the lm-eval version)."
                )
            resolved.append(str(target))
        else:
            resolved.append(include)
    data["include"] = resolved if isinstance(includes, list) else resolved[0]


def _resolve_data_files(data: dict[str, Any], path: Path) -> None:
    data_files = (data.get("dataset_kwargs") or {}).get("data_files")
    if data_files is None:
        return
    task = data.get("task", path.stem)

    def absolute(value: str) -> str:
        file = Path(value) if Path(value).is_absolute() else path.parent / value
        if not file.is_file():
            raise UsageError(
                f"Task '{task}' ({path}) needs the data file {file}, which does not exist: restore it "
                "(git checkout pipeline/demo/tasks) or drop the task from evaluation.tasks."
            )
        return str(file.resolve())

    if isinstance(data_files, str):
        resolved: Any = absolute(data_files)
    elif isinstance(data_files, list):
        resolved = [absolute(item) for item in data_files]
    else:
        resolved = {
            split: [absolute(item) for item in files] if isinstance(files, list) else absolute(files)
            for split, files in data_files.items()
        }
    data["dataset_kwargs"] = {**data["dataset_kwargs"], "data_files": resolved}


def materialize_tasks(source: Path, dest: Path) -> Path:
    """Write ``source``'s task YAMLs to ``dest`` with includes and data files resolved; copy its .py hooks."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        if path.suffix == ".py":
            shutil.copy2(path, dest / path.name)
        elif path.suffix in (".yaml", ".yml") or path.name.endswith("_yaml"):
            data = _read_task_yaml(path)
            _resolve_includes(data, path)
            _resolve_data_files(data, path)
            text = yaml.dump(data, Dumper=_TaskDumper, sort_keys=False, allow_unicode=True, width=120)
            (dest / path.name).write_text(text, encoding="utf-8")
    return dest


def _data_file_values(data_files: Any) -> list[str]:
    """The file names in a task's ``dataset_kwargs.data_files`` (a string, a list, or a split mapping)."""
    if isinstance(data_files, str):
        return [data_files]
    if isinstance(data_files, list):
        return [item for item in data_files if isinstance(item, str)]
    if isinstance(data_files, dict):
        return [name for files in data_files.values() for name in _data_file_values(files)]
    return []


def _named_data_files(path: Path) -> list[Path]:
    """Local data files a task YAML names, resolved as lm-eval resolves them (against the working directory)."""
    try:
        data = _read_task_yaml(path)
    except (yaml.YAMLError, UsageError):
        return []  # not a task file pubctl can read; its bytes are still hashed, and lm-eval reports it if broken
    values = _data_file_values((data.get("dataset_kwargs") or {}).get("data_files"))
    return [Path(value) if Path(value).is_absolute() else Path.cwd() / value for value in values]


def folder_digest(folder: Path) -> str:
    """sha256 over a task folder's files and the local data files its YAMLs name (the base-result cache key).

    The data files matter as much as the task definitions: a user task whose JSONL lives outside the folder
    and is edited must not be answered from the cache. Files inside the folder are hashed once, as part of it.
    """
    digest = hashlib.sha256()
    files = task_files(folder)
    for path in files:
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(bytes.fromhex(sha256_file(path)))
    inside = {path.resolve() for path in files}
    for yaml_file in (p for p in files if p.suffix in (".yaml", ".yml")):
        for data_file in _named_data_files(yaml_file):
            if data_file.exists() and data_file.resolve() not in inside:
                # sha256_file refuses a FIFO or device before lm-eval would open it and block.
                digest.update(str(data_file.resolve()).encode())
                digest.update(bytes.fromhex(sha256_file(data_file)))
    return digest.hexdigest()


def task_files(folder: Path) -> list[Path]:
    """Every file lm-eval may read under ``folder``: regular files inside it, or NotRegularFile naming the first other.

    lm-eval walks the include folder and opens each YAML it finds; a FIFO would block it and a link out of
    the folder would read (and cache-key) a file that is not part of the release, so both are refused here.
    """
    files = []
    for path in sorted(folder.rglob("*")):
        if "__pycache__" in path.parts or (path.is_dir() and not path.is_symlink()):
            continue
        inside_regular_file(path, folder)
        files.append(path)
    return files


@dataclass(frozen=True)
class TaskSource:
    """Where lm-eval finds the tasks of a release."""

    include_path: Path | None
    """Folder given to TaskManager(include_path=...), None for lm-eval's own tasks only."""
    include_defaults: bool
    """Whether lm-eval's own task folder is indexed too."""
    offline: bool
    """True for the bundled tasks: their data is local, so datasets and the Hub client run offline."""
    digest: str
    """What the task definitions hash to (part of the base-result cache key)."""


def prepare_task_source(include_path: str | None, root: Path, workdir: Path) -> TaskSource:
    """Resolve evaluation.include_path: 'builtin' is materialized into ``workdir``; a folder is used as it is."""
    if include_path is None:
        return TaskSource(None, True, False, "")
    if include_path == BUILTIN_TASKS:
        folder = materialize_tasks(builtin_tasks_dir(), workdir / "tasks")
        return TaskSource(folder, False, True, folder_digest(builtin_tasks_dir()))
    folder = project_path(include_path, root)
    if not folder.is_dir():
        raise UsageError(
            f"evaluation.include_path: {include_path!r} is not a folder ({folder} does not exist); give a folder "
            f"of lm-eval task YAMLs, or '{BUILTIN_TASKS}' for pubctl's offline demo tasks."
        )
    return TaskSource(folder.resolve(), True, False, folder_digest(folder))


# ------------------------------------------------------------------------- metadata
CHANCE_BY_TASK: dict[str, float] = {"hellaswag": 0.25, "mmlu": 0.25}
"""Chance levels of standard tasks where the items do not say (used only when no samples were logged)."""


def _data_file_label(value: Any, root: Path) -> str | None:
    """A readable, machine-independent name for a local data file: relative to the package or project, else its
    file name alone (the record and the card are published; a folder of the author's machine is not theirs to)."""
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else None
    if not isinstance(value, str):
        return None
    path = Path(value)
    import pipeline

    for base in (Path(pipeline.__file__).resolve().parent.parent, root):
        try:
            return str(path.resolve().relative_to(base))
        except ValueError:
            continue
    return path.name


def dataset_of(task_config: dict[str, Any], root: Path) -> tuple[str | None, str | None, str | None]:
    """(dataset id, config, split scored) of one leaf task, from the task config lm-eval reports."""
    split = task_config.get("test_split") or task_config.get("validation_split")
    path = task_config.get("dataset_path")
    name = task_config.get("dataset_name")
    if path in LOCAL_DATASET_BUILDERS:
        data_files = (task_config.get("dataset_kwargs") or {}).get("data_files")
        files = data_files.get(split) if isinstance(data_files, dict) else data_files
        return _data_file_label(files, root), name, split
    return path, name, split


def common(values: Iterable[Any]) -> Any:
    """The one value all of ``values`` share, or None when they differ (a group's subject configs)."""
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def chance_from_samples(samples: list[dict[str, Any]], metric: str) -> float | None:
    """Expected score of uniform guessing over the items actually scored.

    acc / acc_norm of a multiple-choice task: the mean of 1/number-of-choices. truthfulqa_mc2's ``acc`` is
    the normalised probability mass on the true answers, which uniform guessing puts at (true answers) /
    (choices) per item. Other metrics have no item-derived chance level here: None.
    """
    if not samples or metric not in ("acc", "acc_norm"):
        return None
    scores = []
    for sample in samples:
        doc = sample.get("doc") or {}
        mc2 = doc.get("mc2_targets")
        if isinstance(mc2, dict) and mc2.get("labels"):
            labels = mc2["labels"]
            scores.append(sum(1 for label in labels if label == 1) / len(labels))
            continue
        choices = sample.get("arguments") or []
        if not choices:
            return None
        scores.append(1 / len(choices))
    return sum(scores) / len(scores)
