"""Reading a release config: the YAML file, validation, and error messages that name file, field and line."""

from __future__ import annotations

import difflib
import hashlib
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ValidationError,
)

from pipeline.config.release import ReleaseConfig
from pipeline.config.yaml_bounds import read_config_text, yaml_document
from pipeline.errors import ConfigError
from pipeline.layout import configs_dir, project_root, release_name_problem
from pipeline.methods import METHODS, MethodParams
from pipeline.refs import excerpt

BRANCH_NAMES = frozenset({"str", "int", "float", "bool", "none", "bytes", "dict", "list"})
"""pydantic's names of plain union members as they appear in an error's loc."""
PROBLEMS_SHOWN = 20
"""Most validation problems listed one per line (a list of 10,000 bad items is one problem repeated)."""


# -------------------------------------------------------------------------- loading
def resolve_config_path(name_or_path: str, root: Path | None = None) -> Path:
    """configs/NAME.yaml under the project root, or a path to a YAML file; either way NAME must be a valid name."""
    root = root or project_root()
    try:
        candidate = Path(name_or_path).expanduser()
    except RuntimeError:  # '~user' of no such user
        candidate = Path(name_or_path)
    is_path = candidate.suffix in (".yaml", ".yml") or candidate.parent != Path()
    # One rule for both spellings: the release is named after the file, and the name becomes cards/NAME and runs/NAME.
    problem = release_name_problem(candidate.stem if is_path else name_or_path)
    if problem and is_path:
        raise ConfigError(f"{excerpt(name_or_path)}: {problem} (a release is named after its config file).")
    if problem:
        raise ConfigError(f"{problem[0].upper()}{problem[1:]}.")
    if is_path:
        path = candidate if candidate.is_absolute() else (Path.cwd() / candidate)
        if not _exists(path):
            raise ConfigError(f"{excerpt(name_or_path)}: no such config file ({excerpt(str(path), 300)}).")
        return path
    folder = configs_dir(root)
    path = folder / f"{name_or_path}.yaml"
    if not _exists(path):
        known = sorted(p.stem for p in folder.glob("*.yaml") if not release_name_problem(p.stem))
        close = difflib.get_close_matches(name_or_path, known, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        listing = f" Known releases: {', '.join(known)}." if known else f" {folder} has no configs."
        raise ConfigError(f"No release config named '{name_or_path}' ({path} does not exist).{listing}{hint}")
    return path


def _exists(path: Path) -> bool:
    """Whether something is there (a folder or FIFO is then refused by name when it is read, not reported missing)."""
    try:
        return path.exists()
    except OSError:  # a name the file system refuses (too long)
        return False


def load_config(name_or_path: str, root: Path | None = None) -> ReleaseConfig:
    """Load and validate a release config; every problem is a ConfigError naming file, field and line."""
    root = (root or project_root()).resolve()
    path = resolve_config_path(name_or_path, root)
    raw, text = read_config_text(path)
    data, node = yaml_document(text, path)
    if data is None:
        raise ConfigError(f"{path}: the file is empty; a release config needs at least hub.repo_id.")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of sections (model, data, method, ...), "
            f"found a {type(data).__name__}."
        )
    try:
        config = ReleaseConfig.model_validate(data, context={"root": root})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path, node)) from None
    config._name = path.stem
    config._path = path
    config._sha256 = hashlib.sha256(raw).hexdigest()
    return config


# ------------------------------------------------------------------- error messages
def format_validation_error(exc: ValidationError, path: Path, node: yaml.Node | None) -> str:
    """One line per problem: field path, YAML line, what was found and what was expected."""
    errors = _merge_union_branches(exc.errors(include_url=False))
    lines = []
    for error in errors[:PROBLEMS_SHOWN]:
        loc = _user_loc(error["loc"])
        dotted = ".".join(_short(part) for part in loc) or "(top level)"
        line = _line_of(node, loc)
        where = f" (line {line})" if line else ""
        lines.append(f"  {dotted}{where}: {_describe(error, loc)}")
    count = len(errors)
    if count > PROBLEMS_SHOWN:
        lines.append(f"  ... and {count - PROBLEMS_SHOWN} more")
    head = f"{path}: {count} problem{'s' if count > 1 else ''} in the config:"
    return "\n".join([head, *lines])


def _is_branch(part: str | int) -> bool:
    """Whether a loc part is pydantic's name of a union member ('list[constrained-str]', "literal['all-linear']")."""
    return isinstance(part, str) and ("[" in part or part in BRANCH_NAMES)


def _merge_union_branches(errors: list[Any]) -> list[Any]:
    """One problem per value a union refused: pydantic reports each member's refusal on its own.

    ``target_modules: q_proj`` fails ``list[str]`` and ``Literal['all-linear']``: two problems to a
    user who made one mistake. Refusals of the same value at the same field by different members,
    each at the member itself (not inside it), become one: "should be a valid list or 'all-linear'".
    """
    groups: dict[tuple, list[Any]] = {}
    for error in errors:
        loc = error["loc"]
        if len(loc) > 1 and _is_branch(loc[-1]) and "[key]" not in loc:
            groups.setdefault(loc[:-1], []).append(error)
    merged, done = [], set()
    for error in errors:
        loc = error["loc"]
        group = groups.get(loc[:-1]) if len(loc) > 1 and _is_branch(loc[-1]) else None
        if group is None or len(group) < 2:
            merged.append(error)
        elif loc[:-1] not in done:
            done.add(loc[:-1])
            wants = [item["msg"].removeprefix("Value error, ").removeprefix("Input should be ") for item in group]
            message = "Input should be " + " or ".join(dict.fromkeys(wants))
            merged.append({**error, "loc": loc[:-1], "msg": message, "type": "union_type"})
    return merged


def _short(part: str | int) -> str:
    """One part of a field path; a key is the user's text and may be of any length."""
    text = str(part)
    return text if len(text) <= 60 else f"{text[:60]}..."


def _user_loc(loc: tuple) -> tuple:
    """Drop pydantic's union tag (method.dpo.beta -> method.beta) and key marker: users never write them."""
    parts = [part for part in loc if part != "[key]"]  # pydantic's marker of a dict key (checks.allow.ID)
    if len(parts) > 1 and parts[0] == "method" and parts[1] in METHODS:
        del parts[1]
    return tuple(parts)


def _describe(error: dict, loc: tuple) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        key = _short(loc[-1])
        valid = _valid_keys(error["loc"][:-1])
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(sorted(valid))}"
        return f"unknown key '{key}'{hint}"
    if kind == "missing":
        return "required field is missing"
    if kind == "union_tag_invalid":
        tag = _short(error.get("ctx", {}).get("tag", ""))
        close = METHODS.closest(tag)
        hint = f"; did you mean '{close}'?" if close else ""
        return f"unknown method '{tag}'; known methods: {', '.join(METHODS)}{hint}"
    if kind == "union_tag_not_found":
        return f"method needs a 'name': one of {', '.join(METHODS)}"
    message = error["msg"].removeprefix("Value error, ")
    found = error.get("input")
    if kind.endswith("_type") or kind.startswith(("greater", "less", "literal", "int_", "float_", "bool_")):
        return f"{message} (found {excerpt(found)})"
    return message


def _valid_keys(loc: tuple) -> list[str]:
    """The keys allowed at pydantic's ``loc`` in ReleaseConfig (for did-you-mean suggestions)."""
    current: type[BaseModel] | None = ReleaseConfig
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        if issubclass(current, MethodParams) or (current is ReleaseConfig and part == "method"):
            # pydantic puts the union tag in the loc: method.<name>.<key>
            current = MethodParams if part == "method" else METHODS[part].params if part in METHODS else None
            continue
        # pydantic's loc spells a field by its alias (`import`, not `import_`).
        fields = {info.alias or name: info for name, info in current.model_fields.items()}
        field = fields.get(str(part))
        current = _model_in(field.annotation) if field else None
    if current is None or current is MethodParams:
        return []
    return [info.alias or name for name, info in current.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The config section model inside an annotation (unwrapping Optional, list and dict)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        model = _model_in(arg)
        if model is not None:
            return model
    return None


def _line_of(node: yaml.Node | None, loc: tuple) -> int | None:
    """1-based line of the YAML node at ``loc`` (the closest existing parent when the key is missing)."""
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == str(part)), None)
            if match is None:
                key_node = next((k for k, _ in node.value if k.value == str(part)), None)
                return (key_node.start_mark.line + 1) if key_node else line
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return line
        line = node.start_mark.line + 1
    return line


def config_schema() -> dict[str, Any]:
    """JSON schema of the release config (``pubctl schema``), for editors."""
    return ReleaseConfig.model_json_schema()
