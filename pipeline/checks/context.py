"""The facts every check reads: the config, the record, and what is on disk, each read at most once.

The model facts (safetensors headers, tokenizer files, the chat template's end of
turn) come from the merged model in runs/NAME/merge/model, parsed as JSON: no torch.
Where that folder is absent (CI on a tagged commit holds only the card bundle) the
checks of its files are skipped, unless the caller is about to push the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.checks.chat_template import TurnEnd, closing_tokens, default_template, turn_end
from pipeline.errors import UsageError
from pipeline.hashing import NotRegularFile, inside_regular_file
from pipeline.safetensors_dtypes import UnreadableWeights, read_header

if TYPE_CHECKING:
    from pipeline.checks.report import Outcome
    from pipeline.config import ReleaseConfig
    from pipeline.layout import Layout
    from pipeline.results import Results


@dataclass(frozen=True)
class Weights:
    """The merged model's safetensors headers, and why any could not be read."""

    headers: list[dict[str, Any]]
    unreadable: list[str]

    @property
    def tensors(self) -> list[dict[str, Any]]:
        return [t for header in self.headers for name, t in header.items() if name != "__metadata__"]


@dataclass
class CheckContext:
    config: ReleaseConfig
    layout: Layout
    results: Results
    for_push: bool = False
    card_only: bool = False
    _json: dict[str, dict[str, Any]] = field(default_factory=dict, init=False, repr=False)

    @property
    def model_dir(self) -> Path:
        return self.layout.merged_model_dir

    @property
    def pushes_model(self) -> bool:
        """A real push of the model itself: its files must be here to be checked."""
        return self.for_push and not self.card_only

    @cached_property
    def has_model(self) -> bool:
        return (self.model_dir / "config.json").is_file()

    def without_model(self, out: Outcome, *, partly: bool = False) -> bool:
        """Report why a check of the merged model's files cannot run; True when it cannot."""
        if self.has_model:
            return False
        why = f"no merged model at {self.model_dir}"
        if self.pushes_model:
            out.fail(why, "the merged model to push (run pubctl merge)")
        else:
            out.skip(f"checks on the model files skipped, {why} (card bundle only)", partly=partly)
        return True

    def model_file(self, name: str) -> Path | None:
        """``name`` in the merged model when it is a regular file inside it; None otherwise, and nothing opened.

        A FIFO would block the check that opens it and a link out of the folder would read a file that is
        not the model's (a token): the model_files gate names either; the other checks see no such file.
        """
        path = self.model_dir / name
        try:
            inside_regular_file(path, self.model_dir)
        except NotRegularFile:
            return None
        return path

    def model_json(self, name: str) -> dict[str, Any]:
        """A JSON file of the merged model ({} when absent, or not a regular file of the folder)."""
        if name not in self._json:
            path = self.model_file(name)
            self._json[name] = read_json(path) if path is not None else {}
        return self._json[name]

    @cached_property
    def weights(self) -> Weights:
        headers, unreadable = [], []
        for path in sorted(self.model_dir.glob("*.safetensors")):
            try:
                inside_regular_file(path, self.model_dir)
                headers.append(read_header(path))
            except NotRegularFile as exc:
                unreadable.append(f"{path.name} {exc.why}, not a regular file")
            except UnreadableWeights as exc:  # a truncated or corrupt file is a failed check, not bad usage
                unreadable.append(str(exc))
        return Weights(headers, unreadable)

    @cached_property
    def chat_template(self) -> str | None:
        """The default chat template as transformers loads it: chat_template.jinja first, then the JSON configs."""
        jinja_file = self.model_file("chat_template.jinja")
        if jinja_file is not None:
            return jinja_file.read_text(encoding="utf-8")
        template = self.model_json("tokenizer_config.json").get("chat_template")
        return default_template(template or self.model_json("chat_template.json").get("chat_template"))

    @cached_property
    def turn_end(self) -> TurnEnd:
        """How the chat template ends an assistant turn (nothing to say when there is no template)."""
        if self.chat_template is None:
            return TurnEnd()
        tokenizer_config = self.model_json("tokenizer_config.json")
        tokens = closing_tokens(self.model_json("tokenizer.json"), tokenizer_config)
        return turn_end(self.chat_template, tokenizer_config, tokens)

    @cached_property
    def readme(self) -> str | None:
        """The committed card's text, or None when there is none."""
        return self.layout.readme.read_text(encoding="utf-8") if self.layout.readme.is_file() else None


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path`` ({} when absent or not an object); invalid JSON is bad input, not a failed check."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: invalid JSON: {exc}.") from None
    return data if isinstance(data, dict) else {}
