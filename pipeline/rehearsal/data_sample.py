"""The first rows of the real training data, in its own schema, as a local parquet file.

From the Hub the rows are streamed (only what is read is downloaded); offline they come from
``--data FILE``, a local file in the same schema. Parquet keeps the nesting and types of the
source (message lists, booleans, floats), so the rehearsal's train stage sees exactly what the
real one will and runs the same schema detection on it.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import UsageError
from pipeline.refs import DataRef

if TYPE_CHECKING:
    from datasets import Dataset

    from pipeline.config import ReleaseConfig
    from pipeline.data_files import RowOrigin
    from pipeline.layout import Layout
    from pipeline.rehearsal.options import RehearsalOptions

EVAL_SHARE = 4
"""An eval split is sampled at a quarter of --rows: enough to prove it loads and has the train split's columns."""


@dataclass(frozen=True)
class DataSample:
    path: Path
    source: str
    """'hub stream of ID (split S)', 'local file PATH' or the built-in name."""
    rows: int
    revision: str | None
    eval_rows: int
    """Rows sampled from data.eval_split (0 when the config names none or the data is local)."""


def sample_data(config: ReleaseConfig, layout: Layout, options: RehearsalOptions, target: Path) -> DataSample:
    """Write the first ``options.rows`` rows to ``target`` (a .parquet path); rewritten only when they changed."""
    data = config.data
    problem = offline_data_problem(config, layout.root, options)
    if problem:
        raise UsageError(problem)
    origin: RowOrigin | None = None
    if options.data is not None:
        local: Path | None = options.data.expanduser().resolve()
        label, reference = f"--data {options.data}", str(options.data)
        source = f"local file {local}"
    else:
        ref = DataRef.parse(data.train, layout.root)
        local = ref.local_file()
        label, reference = "data.train", data.train
        source = data.train if ref.is_builtin else f"local file {local}"
    if local is not None:
        from pipeline.data_files import load_local_file

        loaded = load_local_file(local, reference, label)
        origin = loaded.origin
        sample = loaded.dataset.select(range(min(options.rows, len(loaded.dataset))))
        revision, eval_rows = None, 0
    else:
        reference = data.train
        sample, revision = _stream(data.train, data.subset, data.split, data.revision, options.rows)
        eval_rows = 0
        if data.eval_split:
            held_out, _ = _stream(
                data.train, data.subset, data.eval_split, revision, max(options.rows // EVAL_SHARE, 1)
            )
            if sorted(held_out.column_names) != sorted(sample.column_names):
                raise UsageError(
                    f"data.eval_split '{data.eval_split}' of {data.train} has the columns "
                    f"{sorted(held_out.column_names)}, the training split '{data.split}' "
                    f"{sorted(sample.column_names)}: both must share one schema."
                )
            eval_rows = len(held_out)
        source = f"hub stream of {data.train} (split {data.split})"
    if len(sample) == 0:
        raise UsageError(f"data: {source} has no rows to rehearse with.")
    _check_rows(sample, config, reference, origin)
    _write_parquet(sample, target)
    return DataSample(target, source, len(sample), revision, eval_rows)


def _check_rows(sample: Dataset, config: ReleaseConfig, reference: str, origin: RowOrigin | None) -> None:
    """The train stage's checks of the rows (columns, schema, value types, empty values), run on the sample now,
    before a model is built; messages name the file the rows came from and their lines in it."""
    from pipeline.training_data import normalised

    named = config.model_copy(update={"data": config.data.model_copy(update={"train": reference})})
    normalised(sample, named, "training", origin)


def offline_data_problem(config: ReleaseConfig, root: Path, options: RehearsalOptions) -> str | None:
    """Why an offline rehearsal cannot get rows of the training data, or None."""
    train = config.data.train
    if not options.offline or options.data is not None or not DataRef.parse(train, root).is_hub:
        return None
    return (
        f"data.train {train!r} is a Hub dataset and the rehearsal is offline: give a local file in its "
        "schema with --data FILE (.json, .jsonl or .parquet; the first --rows rows are used)."
    )


def _stream(
    repo_id: str, subset: str | None, split: str, revision: str | None, rows: int
) -> tuple[Dataset, str | None]:
    """The first ``rows`` rows of a Hub split, streamed, and the commit they were read at."""
    from datasets import Dataset, load_dataset
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    from pipeline.sources import download_error

    try:
        sha = HfApi().dataset_info(repo_id, revision=revision).sha
        stream = load_dataset(repo_id, name=subset, split=split, revision=sha, streaming=True)
        first: list[dict[str, Any]] = list(itertools.islice(stream, rows))
    except ValueError as exc:  # unknown split or configuration: the config's to fix
        raise UsageError(f"data: could not stream split '{split}' of dataset '{repo_id}': {exc}") from None
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ConnectionError) as exc:
        raise download_error("dataset", repo_id, revision, exc) from None
    features = stream.features  # None when the Hub does not describe them: inferred from the rows
    return Dataset.from_list(first, features=features), sha


def _write_parquet(sample: Dataset, target: Path) -> None:
    """Replace ``target`` only when the bytes differ, so an unchanged sample keeps the train stage's stamp."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}-", suffix=".parquet", dir=target.parent)
    staging = Path(name)
    os.close(fd)
    try:
        sample.to_parquet(str(staging))
        if target.is_file() and target.read_bytes() == staging.read_bytes():
            return
        staging.replace(target)
    finally:
        staging.unlink(missing_ok=True)
