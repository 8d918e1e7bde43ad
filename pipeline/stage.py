"""The stage contract: what every link of train -> merge -> evaluate -> card -> check -> push declares.

A stage is one contract from (config, layout) to the record sections it owns:

- ``name``: the command and the stamp's name.
- ``owns``: the record sections only it writes (facts flow forward: a stage reads
  the config and the sections of stages before it, never the other way round).
- ``config_fields``: config sections or dotted fields whose values change its result
  (the run options inside them, pipeline.config.run_options.RUN_OPTIONS, are left out
  of every stamp).
- ``packages``: libraries whose version changes its result.
- ``files(config, layout, hasher)`` / ``outputs(...)``: hashes of the files it reads
  and of those it leaves; ``required``: outputs a finished run must have left.
- ``options``: command options that change its result, each with the value that
  means "as the config says".
- ``run(config, layout, **options) -> StageResult``.

The release chain (pipeline.release) writes the sections a stage returns, stamps it,
and decides from the declarations alone whether it must run again; ``pubctl list``
and push's stamp read the same declarations. Nothing here imports a stage's heavy
libraries: ``run`` is imported from ``entry`` when the stage actually runs.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pipeline import __version__
from pipeline.config.run_options import RUN_OPTIONS
from pipeline.errors import UsageError
from pipeline.stamps import StageInputs, canonical_hash

if TYPE_CHECKING:
    from pydantic import BaseModel

    from pipeline.config import ReleaseConfig
    from pipeline.layout import Layout
    from pipeline.stamps import FileHasher

Hashes = Callable[["ReleaseConfig", "Layout", "FileHasher"], dict[str, str]]


@dataclass(frozen=True)
class StageResult:
    """What a stage run produced, for the chain to record."""

    summary: str
    """One line: what the stage did (printed, kept in the stamp, shown by ``pubctl list``)."""
    sections: Mapping[str, Any] = field(default_factory=dict)
    """Record sections to write, by name; each must be one the stage owns."""
    details: dict[str, Any] | None = None
    """Facts about the run kept in the stamp, not the record (push: commit, url, bytes sent)."""
    stamped: bool = True
    """False when the run changed nothing worth remembering (a push dry run): no stamp is written."""


class Stage(Protocol):
    """One link of the chain (see the module docstring for each member)."""

    name: str
    owns: tuple[str, ...]
    config_fields: tuple[str, ...]
    packages: tuple[str, ...]
    required: tuple[str, ...]
    options: Mapping[str, Any]
    refreshes_provenance: bool

    def load(self) -> Callable[..., StageResult]:
        """Import the stage's code: a missing module or package fails before anything is changed."""
        ...

    def interrupted(self, config: ReleaseConfig, layout: Layout) -> str:
        """After Ctrl-C: what running it again will do (train: the checkpoint it resumes from)."""
        ...

    def files(self, config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]: ...

    def outputs(self, config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]: ...

    def run(self, config: ReleaseConfig, layout: Layout, **options: Any) -> StageResult: ...


def config_hashes(fields: tuple[str, ...], config: ReleaseConfig, run_options: tuple[str, ...] = ()) -> dict[str, str]:
    """Hash of each config section or dotted field a stage declares ('*': every section).

    Run options inside a section are hashed at their default value rather than dropped, so a
    section whose run options are at their defaults hashes as it always did (stamps written
    before a field became a run option stay valid) and changing one changes nothing.
    """
    names = tuple(type(config).model_fields) if fields == ("*",) else fields
    hashes = {}
    for name in names:
        section, _, rest = name.partition(".")
        value: Any = getattr(config, section)
        if rest:
            for part in rest.split("."):
                value = getattr(value, part)
            data = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
        else:
            data = _dump_without(value, [o.partition(".")[2] for o in run_options if o.partition(".")[0] == section])
        hashes[name] = canonical_hash(data)
    return hashes


def _dump_without(section: BaseModel, run_options: list[str]) -> dict[str, Any]:
    """``section`` dumped as JSON data with each dotted run option below it set to its default."""
    from pydantic_core import to_jsonable_python

    data = section.model_dump(mode="json")
    for option in run_options:
        *parents, leaf = option.split(".")
        model, node = section, data
        for part in parents:
            model, node = getattr(model, part), node[part]
        default = type(model).model_fields[leaf].get_default(call_default_factory=True)
        node[leaf] = to_jsonable_python(default)
    return data


@functools.cache
def _version(package: str) -> str:
    from pipeline.provenance import package_versions

    return package_versions((package,)).get(package) or "not installed"


def stage_inputs(
    stage: Stage, config: ReleaseConfig, layout: Layout, hasher: FileHasher, options: dict[str, Any]
) -> StageInputs:
    """Hashes of everything ``stage``'s result depends on, now, from its declarations."""
    versions = {"pubctl": __version__, **{name: _version(name) for name in stage.packages}}
    stamped = {name: options.get(name, default) for name, default in stage.options.items()}
    return StageInputs(
        config=config_hashes(stage.config_fields, config, RUN_OPTIONS),
        files=stage.files(config, layout, hasher),
        versions=versions,
        options=stamped,
    )


def no_files(config: ReleaseConfig, layout: Layout, hasher: FileHasher) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class DeclaredStage:
    """A :class:`Stage` from declarations and an ``entry`` ("module:function") imported when it runs."""

    name: str
    owns: tuple[str, ...]
    config_fields: tuple[str, ...]
    entry: str
    packages: tuple[str, ...]
    files: Hashes = no_files
    outputs: Hashes = no_files
    required: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    refreshes_provenance: bool = False
    """Whether writing its sections also refreshes the record's provenance (stages that measure)."""
    on_interrupt: str | None = None
    """"module:function" of (config, layout) -> what running it again will do, for the Ctrl-C message."""

    def load(self) -> Callable[..., StageResult]:
        return load_entry(self.entry)

    def run(self, config: ReleaseConfig, layout: Layout, **options: Any) -> StageResult:
        return self.load()(config, layout, **options)

    def interrupted(self, config: ReleaseConfig, layout: Layout) -> str:
        if self.on_interrupt is None:
            return f"nothing of it was recorded; `pubctl {self.name} {layout.name}` runs it again"
        return load_entry(self.on_interrupt)(config, layout)


def load_entry(entry: str) -> Callable[..., Any]:
    """Import ``module:function`` lazily: a stage's heavy imports happen only when it runs."""
    module, _, attr = entry.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("pipeline"):
            raise UsageError(
                f"{module} cannot be imported: {exc.name} is missing from this pubctl installation; "
                "reinstall pubctl (pip install -e . in a checkout)."
            ) from None
        raise UsageError(
            f"{module} needs the package '{exc.name}', which is not installed. "
            "Install the training stack with: pip install 'pubctl[train]'."
        ) from None


def write_sections(layout: Layout, stage: Stage, config: ReleaseConfig, sections: Mapping[str, Any]) -> None:
    """Write ``sections`` of the record for ``stage``: only sections it owns, atomically, in one rewrite.

    The one place a stage's facts enter results.json. The chain calls it with a
    stage's result; a stage that must record something before it goes on (check
    records waivers, then re-renders the card) calls it too.
    """
    if not sections:
        return
    foreign = sorted(set(sections) - set(stage.owns))
    if foreign:
        raise ValueError(f"stage {stage.name} returned record sections it does not own: {foreign}")
    from pipeline.results import update_results

    values = dict(sections)
    if stage.refreshes_provenance:
        from pipeline.provenance import collect

        values["provenance"] = collect(config, layout.root)
    update_results(layout.results, layout.name, **values)
