"""Which file card.template names, and the rule every card template file obeys, included ones too.

card.template is a name in templates/ or a path relative to the project root or to
the config's folder. Whatever the spelling (``~``, ``..``, an absolute path, a
symbolic link), the file read is the one its fully resolved path names, and that
path must lie inside the project (or inside templates/, for a name found there).
It must be a regular file of at most MAX_TEMPLATE_BYTES outside any hidden folder:
a token file, /etc/passwd, .git/config or a FIFO is refused before it is opened,
so nothing outside the project reaches a README or the compiled-template cache.

The card stage renders the file this module picks and the card's stamp hashes the
same one (pipeline.stages.hashes). Imports no jinja2.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import UsageError
from pipeline.hashing import kind_of
from pipeline.layout import templates_dir

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig
    from pipeline.layout import Layout

DEFAULT_TEMPLATE = "model_card.md.j2"
MAX_TEMPLATE_BYTES = 256 * 1024
"""The largest template file read; the default card's largest is under 4 KiB."""
MAX_SPELLING = 1024
"""card.template longer than this is refused before it reaches the file system (ENAMETOOLONG)."""


class TemplateRefused(UsageError):
    """A template file pubctl will not read: outside its folder, not a regular file, too large or hidden."""


@dataclass(frozen=True)
class TemplateChoice:
    """The template to render: its name, the folders its includes and extends are looked up in, its file."""

    name: str
    search: tuple[Path, ...]
    file: Path


def where_templates_live(root: Path, default_dir: Path) -> str:
    return (
        f"A card template is a file in {default_dir} named by its name, or a file inside the project {root} "
        "named by its path relative to the project or to the config's folder."
    )


def card_template(config: ReleaseConfig, layout: Layout) -> TemplateChoice:
    """card.template resolved and checked (TemplateRefused or UsageError when it cannot be used)."""
    default_dir = default_templates(layout.root)
    config_dir = config.path.parent if config.path is not None else None
    return locate_template(config.card.template, layout.root, default_dir, config_dir)


def user_template_file(config: ReleaseConfig, layout: Layout) -> Path | None:
    """The file card.template names when it lies outside templates/ (hashed on its own), else None."""
    choice = card_template(config, layout)
    return None if choice.search == (default_templates(layout.root),) else choice.file


def default_templates(root: Path) -> Path:
    """The templates/ folder pubctl's own templates are read from (a user template may extend them)."""
    folder = templates_dir(root).resolve()
    if not (folder / DEFAULT_TEMPLATE).is_file():
        raise UsageError(f"No card templates: {folder / DEFAULT_TEMPLATE} does not exist.")
    return folder


def locate_template(value: str, root: Path, default_dir: Path, config_dir: Path | None) -> TemplateChoice:
    """The template ``value`` names: in ``default_dir`` first, then under ``root`` or ``config_dir``."""
    where = where_templates_live(root, default_dir)
    shown = _shown(value)
    if not value.strip() or "\x00" in value or len(value) > MAX_SPELLING:
        raise UsageError(f"card.template {shown} is not a usable file name. {where}")
    path = Path(value)
    if value.startswith("~"):
        try:
            path = path.expanduser()
        except RuntimeError:  # ~user of an unknown user
            raise UsageError(f"card.template {shown}: cannot expand '~'. {where}") from None
    if not path.is_absolute() and ".." not in path.parts and _exists(default_dir / path):
        file = checked_template(default_dir / path, default_dir, f"card.template {shown}")
        return TemplateChoice(name=path.as_posix(), search=(default_dir,), file=file)
    if path.is_absolute():
        candidates = [path]
    else:
        candidates = [root / path] + ([config_dir / path] if config_dir is not None else [])
    outside = None
    for candidate in candidates:
        resolved = _resolved(candidate)
        if not _within(resolved, root):
            outside = outside or resolved
        elif _exists(candidate):
            file = checked_template(candidate, root, f"card.template {shown}")
            if file.parent == default_dir:  # templates/NAME spelled as a path
                return TemplateChoice(name=file.name, search=(default_dir,), file=file)
            if file.name == DEFAULT_TEMPLATE:
                raise UsageError(
                    f"card.template {shown}: a user template must not be called {DEFAULT_TEMPLATE}, the name it "
                    "extends."
                )
            return TemplateChoice(name=file.name, search=(file.parent, default_dir), file=file)
    if outside is not None:
        raise TemplateRefused(f"card.template {shown} resolves to {outside}, outside the project {root}. {where}")
    looked = ", ".join(str(path) for path in dict.fromkeys([default_dir / value, *candidates]))
    raise UsageError(f"card.template {shown}: no template at {looked}. {where}")


def checked_template(path: Path, folder: Path, what: str) -> Path:
    """The resolved path of ``path`` when it is a template file pubctl may read from ``folder``; opens nothing."""
    resolved = _resolved(path)
    if not _within(resolved, folder):
        link = f"is a symbolic link to {resolved}" if _is_link_anywhere(path, folder) else f"resolves to {resolved}"
        raise TemplateRefused(f"{what}: {path} {link}, outside {folder}; templates are read from inside it only.")
    hidden = [part for part in resolved.relative_to(folder.resolve()).parts if part.startswith(".")]
    if hidden:
        raise TemplateRefused(
            f"{what}: {path} lies in a hidden file or folder ({hidden[0]}); hidden files (.git, .env, tokens) "
            "are never read into a card."
        )
    try:
        info = resolved.stat()
    except OSError as exc:
        raise TemplateRefused(f"{what}: {path} cannot be read ({exc.strerror or type(exc).__name__}).") from None
    if not stat.S_ISREG(info.st_mode):
        raise TemplateRefused(f"{what}: {path} is {kind_of(info.st_mode)}, not a regular file; it is never opened.")
    if info.st_size > MAX_TEMPLATE_BYTES:
        raise TemplateRefused(
            f"{what}: {path} is {info.st_size:,} bytes; a card template may be at most {MAX_TEMPLATE_BYTES:,}."
        )
    return resolved


def read_template(path: Path, what: str) -> str:
    """The text of a file :func:`checked_template` accepted, opened so that a FIFO swapped in cannot block."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise TemplateRefused(f"{what}: {path} is {kind_of(info.st_mode)}, not a regular file.")
            data = handle.read(MAX_TEMPLATE_BYTES + 1)
    except OSError as exc:
        raise TemplateRefused(f"{what}: {path} cannot be read ({exc.strerror or type(exc).__name__}).") from None
    if len(data) > MAX_TEMPLATE_BYTES:
        raise TemplateRefused(f"{what}: {path} is larger than {MAX_TEMPLATE_BYTES:,} bytes.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TemplateRefused(f"{what}: {path} is not UTF-8 text (byte {exc.start}).") from None


def _resolved(path: Path) -> Path:
    # realpath never raises on loops or missing parts; a name too long for the OS is "not found" below.
    return Path(os.path.realpath(path))


def _within(path: Path, folder: Path) -> bool:
    folder = _resolved(folder)
    return path == folder or folder in path.parents


def _exists(path: Path) -> bool:
    try:
        return os.path.lexists(path)
    except (OSError, ValueError):
        return False


def _is_link_anywhere(path: Path, folder: Path) -> bool:
    """Whether ``path`` or one of its folders below ``folder`` is a symbolic link."""
    current = path
    while current != folder and current != current.parent:
        if current.is_symlink():
            return True
        current = current.parent
    return False


def _shown(value: str) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
