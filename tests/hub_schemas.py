"""Rows in the exact schemas of the Hub datasets the shipped configs name, built from pubctl's bundled pairs.

The content is pubctl's own en/ar preference pairs (pipeline/demo/data/preferences.jsonl); the columns,
nesting, key order and value types are those of the Hub datasets, as their dataset viewers show them:

- HuggingFaceH4/ultrafeedback_binarized (train_prefs/test_prefs): prompt (string), prompt_id (64-hex
  string), chosen and rejected (the whole conversation: the user turn, then the assistant turn, as
  {content, role} structs), messages (= chosen), score_chosen and score_rejected (float64).
- 2A2I/Aya-Command.R-DPO (train): prompt, chosen, rejected as plain Arabic strings.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

PAIRS = Path(__file__).resolve().parent.parent / "pipeline" / "demo" / "data" / "preferences.jsonl"
ARABIC = re.compile("[\u0600-\u06ff]")


def _pairs(arabic: bool) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row for row in rows if bool(ARABIC.search(row["prompt"])) == arabic]


def _turns(prompt: str, answer: str) -> list[dict[str, str]]:
    return [{"content": prompt, "role": "user"}, {"content": answer, "role": "assistant"}]


def h4_ultrafeedback_rows(count: int) -> list[dict[str, Any]]:
    """``count`` rows in HuggingFaceH4/ultrafeedback_binarized's schema."""
    rows = []
    for index, pair in enumerate(_pairs(arabic=False)[:count]):
        chosen = _turns(pair["prompt"], pair["chosen"])
        rows.append(
            {
                "prompt": pair["prompt"],
                "prompt_id": hashlib.sha256(pair["prompt"].encode()).hexdigest(),
                "chosen": chosen,
                "rejected": _turns(pair["prompt"], pair["rejected"]),
                "messages": chosen,
                "score_chosen": float(8 + index % 3),
                "score_rejected": float(2 + index % 4),
            }
        )
    return rows


def aya_command_r_dpo_rows(count: int) -> list[dict[str, Any]]:
    """``count`` rows in 2A2I/Aya-Command.R-DPO's schema (Arabic strings)."""
    return [
        {"prompt": pair["prompt"], "chosen": pair["chosen"], "rejected": pair["rejected"]}
        for pair in _pairs(arabic=True)[:count]
    ]


def write_parquet(rows: list[dict[str, Any]], path: Path) -> Path:
    """The rows as parquet, the way the Hub serves them (nested structs and float64 kept)."""
    from datasets import Dataset

    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows).to_parquet(str(path))
    return path
