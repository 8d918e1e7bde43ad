"""The embedded default: the tiny model recipe, bundled preference data and offline eval tasks."""

from __future__ import annotations

from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent
PREFERENCES = DEMO_DIR / "data" / "preferences.jsonl"
"""builtin:preferences: prompt/chosen/rejected pairs in English and Arabic, written for pubctl."""
TASKS_DIR = DEMO_DIR / "tasks"
"""Offline lm-eval tasks in the HellaSwag, TruthfulQA-MC2 and MMLU formats (evaluation.include_path: builtin)."""
