"""Regenerate the bundled demo preference data and tokenizer corpus.

The hand-written part lives in two committed source files next to this script:

* ``preferences_written.jsonl``: individually written preference pairs
  (English and Modern Standard Arabic, many topics).
* ``corpus_written.txt``: individually written prose, dialogue and code.

This script regenerates the systematic part, arithmetic and unit-conversion
pairs in both languages whose answers are computed here rather than typed,
and writes two outputs:

* ``preferences.jsonl``: the hand-written pairs followed by the generated ones.
* ``corpus.txt``: the hand-written prose followed by the prompts, chosen and
  rejected answers of every pair. The demo's byte-level BPE tokenizer is
  trained on this file, so it covers the preference data's vocabulary.

The output is deterministic. Numbers come from a fixed linear congruential
generator, not from ``random``, so every run on every platform writes the
same bytes. Run ``python make_preferences.py --check`` to confirm that the
committed outputs are up to date without writing anything. It exits with
status 1 if they are not.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from pipeline.demo.data.pair_templates import PLAN, Lcg

HERE = Path(__file__).resolve().parent
WRITTEN_PAIRS = HERE / "preferences_written.jsonl"
WRITTEN_CORPUS = HERE / "corpus_written.txt"
OUT_PAIRS = HERE / "preferences.jsonl"
OUT_CORPUS = HERE / "corpus.txt"

KEYS = ("prompt", "chosen", "rejected", "language", "topic")
LANGUAGES = ("en", "ar")
MAX_PROMPT_CHARS = 200
MAX_ANSWER_CHARS = 300

Record = dict[str, str]

SEED = 20240607


def validate(record: Record, where: str) -> None:
    """Raise ``ValueError`` if a record breaks the dataset's contract."""
    if tuple(record) != KEYS:
        raise ValueError(f"{where}: keys must be {KEYS}, got {tuple(record)}")
    for key in KEYS:
        value = record[key]
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{where}: {key!r} must be a non-empty string")
    if record["language"] not in LANGUAGES:
        raise ValueError(f"{where}: language must be one of {LANGUAGES}")
    if len(record["prompt"]) > MAX_PROMPT_CHARS:
        raise ValueError(f"{where}: prompt longer than {MAX_PROMPT_CHARS}")
    for key in ("chosen", "rejected"):
        if len(record[key]) > MAX_ANSWER_CHARS:
            raise ValueError(f"{where}: {key} longer than {MAX_ANSWER_CHARS}")
    if record["chosen"] == record["rejected"]:
        raise ValueError(f"{where}: chosen and rejected are identical")


def load_written() -> list[Record]:
    """Read and validate the hand-written pairs."""
    records: list[Record] = []
    lines = WRITTEN_PAIRS.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        record = json.loads(line)
        validate(record, f"{WRITTEN_PAIRS.name}:{number}")
        records.append(record)
    return records


def generate(taken: set[str]) -> Iterator[Record]:
    """Yield the systematic pairs, skipping any prompt already in ``taken``."""
    rng = Lcg(SEED)
    for language, topic, template, count in PLAN:
        made = 0
        while made < count:
            prompt, chosen, rejected = template(rng)
            if prompt in taken:
                continue
            taken.add(prompt)
            made += 1
            yield {
                "prompt": prompt,
                "chosen": chosen,
                "rejected": rejected,
                "language": language,
                "topic": topic,
            }


def build() -> tuple[str, str]:
    """Return the text of ``preferences.jsonl`` and ``corpus.txt``."""
    records = load_written()
    taken: set[str] = set()
    for record in records:
        if record["prompt"] in taken:
            raise ValueError(f"duplicate written prompt: {record['prompt']!r}")
        taken.add(record["prompt"])
    for index, record in enumerate(generate(taken)):
        validate(record, f"generated #{index}")
        records.append(record)

    pairs = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)

    prose = WRITTEN_CORPUS.read_text(encoding="utf-8").rstrip("\n") + "\n"
    blocks = [f"{r['prompt']}\n{r['chosen']}\n{r['rejected']}\n" for r in records]
    corpus = prose + "\n" + "\n".join(blocks)
    return pairs, corpus


def main(argv: list[str] | None = None) -> int:
    """Write the outputs, or with ``--check`` only compare them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if the committed outputs differ from what would be written",
    )
    args = parser.parse_args(argv)
    outputs = dict(zip((OUT_PAIRS, OUT_CORPUS), build(), strict=True))
    if args.check:
        stale = [
            path.name for path, text in outputs.items() if not path.exists() or path.read_text(encoding="utf-8") != text
        ]
        if stale:
            sys.stderr.write(f"out of date: {', '.join(stale)}\n")
            return 1
        return 0
    for path, text in outputs.items():
        with path.open("w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
