"""Files a push makes for the model repository beside the card bundle: the release's config and the Hub's
evaluation results.

- ``pubctl.yaml``: the bytes of the YAML the release was made from (the card links it), so anyone can
  re-run it. The config has no token field (extra keys are refused) and a file that still holds a token
  is refused before anything is sent.
- ``.eval_results/pubctl.yaml``: the benchmark scores the Hub can place on a leaderboard
  (pipeline.eval_results), built from results.json; absent when no benchmark qualifies.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote

from pipeline.errors import UsageError
from pipeline.eval_results import EVAL_RESULTS_PATH, published, to_yaml
from pipeline.hashing import NotRegularFile, open_regular
from pipeline.hub_client import LocalFile, current_token
from pipeline.provenance import PUBLISHED_CONFIG
from pipeline.results import read_results

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig
    from pipeline.layout import Layout

CONFIG_PATH = PUBLISHED_CONFIG
"""Where the release's config lands in the model repository (the card links this path)."""

_TOKEN_SHAPE = re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")
"""A Hugging Face access token's shape (hf_ and 34 letters or digits), stricter than hub_client.scrub's:
a config may well name an hf_something tag, and refusing it would be a false alarm."""


@dataclass
class ReleaseFiles:
    files: list[LocalFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What the plan should say about them (benchmarks left out of the evaluation results, and why)."""


def release_files(config: ReleaseConfig, layout: Layout, revision: str) -> ReleaseFiles:
    """pubctl.yaml and .eval_results/pubctl.yaml for the model repository at ``revision``."""
    made = ReleaseFiles()
    config_file = config_bytes(config)
    if config_file is not None:
        made.files.append(config_file)
    chosen = published(config, read_results(layout.results), results_url(config.hub.repo_id, revision))
    if chosen.entries:
        made.files.append(LocalFile.from_bytes(EVAL_RESULTS_PATH, to_yaml(chosen.entries)))
        tasks = ", ".join(f"{e.dataset_id} {e.task_id}" for e in chosen.entries)
        made.notes.append(f"{EVAL_RESULTS_PATH}: {len(chosen.entries)} score(s) for Hub benchmarks ({tasks})")
    made.notes.extend(f"not in {EVAL_RESULTS_PATH}: {why}" for why in chosen.skipped)
    return made


def results_url(repo_id: str, revision: str) -> str:
    """results.json of the release on the Hub, at the branch the push commits to."""
    from huggingface_hub import constants

    return f"{constants.ENDPOINT}/{repo_id}/blob/{quote(revision, safe='')}/results.json"


def config_bytes(config: ReleaseConfig) -> LocalFile | None:
    """The config file as ``pubctl.yaml``; None for a config made in code (it has no file)."""
    path = config.path
    if path is None:
        return None
    try:
        with open_regular(path) as handle:
            data = handle.read()
    except NotRegularFile as exc:
        raise UsageError(f"push {config.name}: refused {exc.path} as pubctl.yaml: it {exc.why}.") from None
    except OSError as exc:
        raise UsageError(f"push {config.name}: cannot read {path} ({exc.strerror or exc}).") from None
    if config.sha256 and hashlib.sha256(data).hexdigest() != config.sha256:
        raise UsageError(
            f"push {config.name}: {path} changed after pubctl read it; run the push again so that pubctl.yaml "
            "is the config the push used. Nothing was sent."
        )
    # The parsed values too: YAML's escapes ("hf_\u0041...") spell a token the bytes do not show.
    parsed = json.dumps(config.model_dump(mode="json"), ensure_ascii=False)
    if _holds_token(data.decode("utf-8", errors="replace"), current_token()) or _holds_token(parsed, current_token()):
        raise _token_refusal(config, f"{path}", "pubctl.yaml (and its values may reach the card and the commit)")
    return LocalFile.from_bytes(CONFIG_PATH, data)


SCANNED = ("README.md", "results.json", CONFIG_PATH, EVAL_RESULTS_PATH)
"""Text files of a commit that carry what people wrote (a summary, a limitation, a waiver's reason): each is
searched for a token before anything is sent. Model files are the model's, and they are recorded by hash."""


def refuse_tokens(config: ReleaseConfig, files: list[LocalFile], title: str, refs: dict[str, str | None]) -> None:
    """A UsageError when the commit title, a branch or tag name (``refs``: option -> value) or a text file the push
    would publish holds the token in use or a token's shape."""
    token = current_token()
    if _holds_token(title, token):
        raise _token_refusal(config, "the commit message", "the commit's title")
    for option, value in refs.items():
        if value and _holds_token(value, token):
            raise _token_refusal(config, option, "a branch or tag name")
    for local in files:
        if local.path_in_repo not in SCANNED:
            continue
        # A card file, bounded by the card's limits, or generated bytes.
        if _holds_token(local.read_bytes().decode("utf-8", errors="replace"), token):
            raise _token_refusal(config, str(local.source or local.path_in_repo), local.path_in_repo)


def _holds_token(text: str, token: str | None) -> bool:
    return bool(token and token in text) or _TOKEN_SHAPE.search(text) is not None


def _token_refusal(config: ReleaseConfig, where: str, published_as: str) -> UsageError:
    # Never echo the match: the message would carry the very secret it refuses to publish.
    return UsageError(
        f"push {config.name}: {where} contains what looks like a Hugging Face token; it would be published as "
        f"{published_as}. Remove it (pubctl reads the token from HF_TOKEN or `hf auth login`). Nothing was sent."
    )
