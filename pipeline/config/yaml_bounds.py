"""Reading a release config's YAML with bounds: size, nesting depth, values, no aliases, no duplicate keys.

A release config is a small, hand-written document, so the bounds cost a user nothing and keep a hostile
one from costing the machine anything. PyYAML in pure Python reads about 250 KB of plain text or 10,000
values a second, so both are bounded: at most ``CONFIG_MAX_BYTES`` are read (a FIFO or device is never
read), and composing stops at ``NODES_MAX`` values. Nesting stops at ``DEPTH_MAX``: PyYAML's composer
recurses once per level and dies of RecursionError near 1,000. Aliases are refused outright instead of
bounded: a config never needs one, and ``*name`` repeated through a few anchors expands to 10^9 values
(the "billion laughs").
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError
from pipeline.refs import excerpt

CONFIG_MAX_BYTES = 256 * 1024
"""Largest config file read (the shipped ones are about 2 KB)."""
DEPTH_MAX = 50
"""Deepest nesting of mappings and lists (a config uses four levels)."""
NODES_MAX = 5_000
"""Most values in one config (the shipped ones have about 100): PyYAML composes some 10,000 a second here,
so this bounds the time a config takes to read as much as the size bound does its memory."""


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases, deep nesting, too many values and duplicate keys (PyYAML keeps the last)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None,
                None,
                f"YAML aliases (*{excerpt(event.anchor)[1:-1]}) are not allowed in a release config; "
                "write the value out where it is used",
                event.start_mark,
            )
        self._depth += 1
        self._nodes += 1
        try:
            if self._depth > DEPTH_MAX:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {DEPTH_MAX} levels", event.start_mark
                )
            if self._nodes > NODES_MAX:
                raise yaml.composer.ComposerError(None, None, f"more than {NODES_MAX:,} values", event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_mapping(loader: _BoundedLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:  # a list or mapping as a key
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                "found a key that is a list or mapping",
                key_node.start_mark,
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {excerpt(key)}",
                key_node.start_mark,
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_BoundedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_config_text(path: Path) -> tuple[bytes, str]:
    """The file's bytes and text: a regular file of at most CONFIG_MAX_BYTES in UTF-8, read once."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror}).") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{path}: not a regular file; a release config is a YAML file.")
        raw = handle.read(CONFIG_MAX_BYTES + 1)
    if len(raw) > CONFIG_MAX_BYTES:
        raise ConfigError(f"{path}: larger than {CONFIG_MAX_BYTES // 1024} KiB; a release config is a short file.")
    try:
        return raw, raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}).") from None


def yaml_document(text: str, path: Path) -> tuple[Any, yaml.Node | None]:
    """(data, node) of the one YAML document in ``text``; every malformed input is a ConfigError with its line."""
    try:
        loader = _BoundedLoader(text)
    except yaml.reader.ReaderError as exc:  # a control character: the reader checks the whole text up front
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(
            f"{path}: invalid YAML at line {line}: character #x{exc.character:04x} is not allowed."
        ) from None
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {_first_line(exc.problem or exc.context)}.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {_first_line(exc)}.") from None
    except (ValueError, OverflowError) as exc:
        # A scalar YAML resolves but Python cannot build: an integer of 5,000 digits, the date 2024-13-45.
        raise ConfigError(f"{path}: invalid YAML value: {_first_line(exc)}.") from None
    finally:
        loader.dispose()
    return data, node


def _first_line(value: object) -> str:
    text = str(value).strip().splitlines()[0] if str(value).strip() else "unknown problem"
    return text if len(text) <= 200 else f"{text[:200]}..."
