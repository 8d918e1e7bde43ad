"""Bytes a push sends to the Hub: a first push, an unchanged re-push, a card-only change.

    python benchmarks/push_bytes.py [--json out.json]

Runs pubctl's push stage through the real huggingface_hub client against the
Hub-compatible server of the tests (tests/hub_server.py, 127.0.0.1), on a
demo-like release: the built-in tiny Qwen3 as the merged model and a card bundle
rendered by the card stage from a hand-written record (tests/hub_fixtures.py).

For each push it reports what the server received:
- request bytes: every HTTP request body (JSON, NDJSON commit with base64 files, LFS uploads);
- file bytes: file content that reached storage (LFS upload bodies + decoded regular files);
- commits: new commits on main; and which endpoints were called.
Goals: an unchanged re-push sends 0 bytes and makes no commit; a card-only change sends only the
changed card files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))

import hub_fixtures  # noqa: E402 - tests/ is put on the path first

hub_fixtures.reserve_local_hub()  # HF_ENDPOINT / HF_HUB_DISABLE_XET before huggingface_hub is imported
os.environ["HF_TOKEN"] = hub_fixtures.TEST_TOKEN
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"


def measure(hub: Any, label: str, push: Any) -> dict[str, Any]:
    from rich.console import Console

    mark, stored = hub.mark(), hub.file_bytes
    start = time.perf_counter()
    plan = push(console=Console(quiet=True))
    seconds = time.perf_counter() - start
    target = plan.model
    return {
        "push": label,
        "request_bytes": hub.body_bytes_since(mark),
        "file_bytes": hub.file_bytes - stored,
        "commits": sum(1 for r in hub.requests[mark:] if r.kind == "commit" and r.status == 200),
        "files_sent": [f.path for f in target.files if f.action in ("add", "update")],
        "files_unchanged": target.count("unchanged"),
        "endpoints": sorted(set(hub.kinds_since(mark))),
        "seconds": round(seconds, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="Also write the measurements here.")
    args = parser.parse_args()

    from hub_server import HubServer

    from pipeline.config import load_config
    from pipeline.demo.tiny_model import tiny_qwen3_path
    from pipeline.layout import Layout, cache_root
    from pipeline.stages import push
    from pipeline.stages.card import render_card

    hub = HubServer(hub_fixtures._reserved).start()
    with tempfile.TemporaryDirectory(prefix="pubctl-push-bytes-") as tmp:
        root = Path(tmp) / "project"
        shutil.copytree(REPO_ROOT / "configs", root / "configs")
        shutil.copytree(REPO_ROOT / "templates", root / "templates")
        config, layout = load_config("demo", root), Layout.for_release("demo", root)
        hub_fixtures.build_release(config, layout, tiny_qwen3_path(cache_root(REPO_ROOT)))
        rows = [
            measure(hub, "first push", lambda console: push.publish(config, layout, console=console)),
            measure(hub, "unchanged re-push", lambda console: push.publish(config, layout, console=console)),
        ]
        text = (root / "configs" / "demo.yaml").read_text(encoding="utf-8")
        (root / "configs" / "demo.yaml").write_text(
            text.replace("It shows the release pipeline end to end", "It walks through the release pipeline"), "utf-8"
        )
        config = load_config("demo", root)
        render_card(config, layout)
        rows.append(
            measure(
                hub,
                "card-only change",
                lambda console: push.publish(config, layout, card_only=True, console=console),
            )
        )
        sizes = {p.name: p.stat().st_size for p in layout.card_dir.iterdir() if p.is_file()}
        total_model = sum(p.stat().st_size for p in layout.merged_model_dir.iterdir())
    hub.stop()

    print(f"demo-like release: merged model {total_model} bytes; README.md {sizes['README.md']} bytes")
    print(f"{'push':<20}{'request bytes':>15}{'file bytes':>12}{'commits':>9}{'seconds':>9}  files sent")
    for row in rows:
        sent = ", ".join(row["files_sent"]) or "-"
        print(
            f"{row['push']:<20}{row['request_bytes']:>15}{row['file_bytes']:>12}{row['commits']:>9}"
            f"{row['seconds']:>9.2f}  {sent}"
        )
    for row in rows:
        print(f"  {row['push']}: endpoints {', '.join(row['endpoints'])}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
