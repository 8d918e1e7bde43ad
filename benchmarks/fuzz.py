"""Count what hostile inputs do to pubctl: exit codes, tracebacks, hangs, secrets leaked or pushed.

    python benchmarks/fuzz.py [--examples N] [--json OUT]

Four families, N mutations each (random, unlike the derandomized CI test in tests/test_fuzz.py):

- config: one place in configs/demo.yaml mutated (replace with a hostile value, delete, add a key, nest);
- record: the same on cards/demo/results.json;
- bytes: a raw edit of either file (truncate, insert brackets, an alias, a python tag, NUL);
- files: the merged model folder of a built release changed on disk (a symlink to a token file outside,
  a FIFO, an unrecorded file, a recorded file rewritten), then ``pubctl push demo`` to a Hub server on
  127.0.0.1; every file that reaches the Hub is compared with what the merge recorded.

Each run is one CLI command in-process, under a 60 s alarm. The report: outcomes by exit code,
tracebacks (goal 0), hangs (goal 0), files holding the outside secret written under the project
(goal 0), files pushed that the merge did not record or whose bytes differ (goal 0).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from hub_fixtures import TEST_TOKEN, reserve_local_hub  # noqa: E402 - tests/ on the path first

reserve_local_hub()  # before huggingface_hub is imported, as in the test suite

from fuzz_inputs import (  # noqa: E402
    COMMANDS,
    SECRET,
    Outcome,
    byte_mutation,
    demo_config,
    demo_record,
    make_project,
    run_pubctl,
    tree_mutation,
    write_config,
    write_record,
)
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FILE_MUTATIONS = ("symlink_out", "symlink_out_dir", "fifo", "extra_file", "rewritten", "hidden_symlink")


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[__import__("hypothesis").Phase.generate],  # count mutations, do not shrink
        suppress_health_check=list(HealthCheck),
    )


def tree_family(target: str, examples: int, work: Path, outcomes: list[Outcome]) -> None:
    base = demo_config() if target == "config" else demo_record()
    write = write_config if target == "config" else write_record

    @_settings(examples)
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        root, outside = make_project(work / "case")
        mutation, tree = data.draw(tree_mutation(base, outside))
        command = data.draw(st.sampled_from(COMMANDS))
        write(root, tree)
        outcomes.append(run_pubctl(root, list(command), f"{target}: {mutation}"))

    one()


def bytes_family(examples: int, work: Path, outcomes: list[Outcome]) -> None:
    @_settings(examples)
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        root, _ = make_project(work / "case")
        relative = data.draw(st.sampled_from(["configs/demo.yaml", "cards/demo/results.json"]))
        text = (root / relative).read_text(encoding="utf-8")
        mutation, mutated = data.draw(byte_mutation(text))
        command = data.draw(st.sampled_from(COMMANDS))
        (root / relative).write_text(mutated, encoding="utf-8")
        outcomes.append(run_pubctl(root, list(command), f"bytes: {relative}: {mutation}"))

    one()


def files_family(examples: int, work: Path, outcomes: list[Outcome], pushed_bad: list[str]) -> None:
    """Hostile files in the merged model, then a real push to the local Hub; count what arrives."""
    import shutil

    from hub_fixtures import build_release
    from hub_server import HubServer

    from pipeline.config import load_config
    from pipeline.demo.tiny_model import tiny_qwen3_path
    from pipeline.layout import Layout

    os.environ["HF_TOKEN"] = TEST_TOKEN
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    cache = Path(os.environ.get("PUBCTL_CACHE", TESTS.parent / "runs" / "_cache"))
    built = work / "built"
    root, _ = make_project(built)
    os.environ["PUBCTL_ROOT"] = str(root)
    config = load_config("demo", root)
    build_release(config, Layout.for_release("demo", root), tiny_qwen3_path(cache))
    import hub_fixtures

    server = HubServer(hub_fixtures._reserved).start()
    try:

        @_settings(examples)
        @given(kind=st.sampled_from(FILE_MUTATIONS), victim=st.integers(min_value=0, max_value=5))
        def one(kind: str, victim: int) -> None:
            server.reset()
            case = work / "case"
            shutil.rmtree(case, ignore_errors=True)
            shutil.copytree(built, case, symlinks=True)
            project, outside = case / "project", case / "token"
            model = project / "runs" / "demo" / "merge" / "model"
            recorded = sorted(p for p in model.iterdir() if p.is_file())
            target = recorded[victim % len(recorded)]
            if kind == "symlink_out":
                (model / "notes.txt").symlink_to(outside)
            elif kind == "symlink_out_dir":
                (model / "extra").symlink_to(outside.parent, target_is_directory=True)
            elif kind == "fifo":
                os.mkfifo(model / "pipe.bin")
            elif kind == "extra_file":
                (model / "notes.txt").write_text("notes the merge never recorded\n", encoding="utf-8")
            elif kind == "rewritten":
                target.unlink()
                target.symlink_to(outside)
            else:
                (model / ".hidden").symlink_to(outside)
            outcome = run_pubctl(project, ["push", "demo"], f"files: {kind} ({target.name})")
            outcomes.append(outcome)
            expected = json.loads((project / "cards" / "demo" / "results.json").read_text(encoding="utf-8"))
            recorded_sha = {f["path"]: f["sha256"] for f in expected["model"]["files"]}
            planted = ("notes.txt", "extra/", "pipe.bin", ".hidden")
            for repo_id in list(server.repos):
                try:
                    files = server.files(repo_id)
                except KeyError:  # created, nothing committed
                    continue
                for path, content in files.items():
                    sha = hashlib.sha256(content).hexdigest()
                    if SECRET.encode() in content:
                        pushed_bad.append(f"{kind}: {repo_id}/{path} holds the outside secret")
                    elif path in recorded_sha and sha != recorded_sha[path]:
                        pushed_bad.append(f"{kind}: {repo_id}/{path} differs from what the merge recorded")
                    elif path.startswith(planted):
                        pushed_bad.append(f"{kind}: {repo_id}/{path} was never recorded by the merge")

        one()
    finally:
        server.stop()


def report(outcomes: list[Outcome], pushed_bad: list[str], seconds: float) -> dict[str, Any]:
    by_family: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for outcome in outcomes:
        family = outcome.mutation.split(":", 1)[0]
        key = "hang" if outcome.hang else "traceback" if outcome.traceback else f"exit {outcome.exit_code}"
        by_family[family][key] += 1
    return {
        "mutations": len(outcomes),
        "seconds": round(seconds, 1),
        "by_family": {family: dict(counts) for family, counts in by_family.items()},
        "tracebacks": [
            f"{o.command} <- {o.mutation}: {o.traceback.strip().splitlines()[-1]}" for o in outcomes if o.traceback
        ],
        "hangs": [f"{o.command} <- {o.mutation}" for o in outcomes if o.hang],
        "secret_written": [f"{o.command} <- {o.mutation}: {o.leaked}" for o in outcomes if o.leaked],
        "pushed_from_outside": pushed_bad,
        "files": [f"{o.mutation} -> exit {o.exit_code}" for o in outcomes if o.mutation.startswith("files")],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=100, help="mutations per family (default 100)")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    outcomes: list[Outcome] = []
    pushed_bad: list[str] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pubctl-fuzz-") as tmp:
        work = Path(tmp)
        tree_family("config", args.examples, work / "config", outcomes)
        tree_family("record", args.examples, work / "record", outcomes)
        bytes_family(args.examples, work / "bytes", outcomes)
        files_family(args.examples, work / "files", outcomes, pushed_bad)
    result = report(outcomes, pushed_bad, time.perf_counter() - start)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
