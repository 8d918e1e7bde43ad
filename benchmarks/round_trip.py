"""Issue 15's round trip, end to end: results made outside pubctl, imported, carded, pushed, verified, signed.

    python benchmarks/round_trip.py [--json out.json]

1. A bare TRL script trains a LoRA DPO adapter on the built-in tiny Qwen3 and merges it (the script of
   tests/test_import.py, run as its own process); the ``lm_eval`` CLI scores the merged model and the base.
2. ``pubctl import``, ``pubctl card`` and ``pubctl check`` make a release of those files.
3. ``pubctl push`` sends it to the Hub-compatible server of the tests (tests/hub_server.py on 127.0.0.1,
   through the real huggingface_hub client), then ``pubctl verify REPO_ID`` reads it back.
4. ``hub.sign`` is turned on with a key generated here, the push adds model.sig, ``pubctl verify`` checks
   the signature; an unchanged re-push follows.

Printed: seconds per step, and per push the bytes of request bodies and file content the server received
and the commits it made. Nothing here touches this checkout: everything runs in a temporary project.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
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

REPO = "pubctl-bench/tiny-dpo-imported"


def pubctl(root: Path, *args: str) -> tuple[float, str]:
    """Run the CLI as a user would (its own process); any exit but 0 stops the benchmark with its output."""
    env = {**os.environ, "PUBCTL_ROOT": str(root)}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args], cwd=root, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"pubctl {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return seconds, proc.stdout + proc.stderr


def key_pair(folder: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = folder / "signer.pem", folder / "signer.pub"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


def made_elsewhere(top: Path, base: Path) -> dict[str, Path]:
    """A bare TRL run and the lm_eval CLI on its merged model and on the base: what a researcher has."""
    from test_import import TRL_SCRIPT, _lm_eval

    from pipeline.demo import DEMO_DIR
    from pipeline.evaluation.tasks import builtin_tasks_dir, materialize_tasks

    run = top / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRL_EXPERIMENTAL_SILENCE": "1"}
    data = DEMO_DIR / "data" / "preferences.jsonl"
    trained = subprocess.run(
        [sys.executable, "-c", TRL_SCRIPT, str(base), str(data), str(run)], env=env, capture_output=True, text=True
    )
    if trained.returncode != 0:
        raise SystemExit(f"the TRL script failed:\n{trained.stderr[-3000:]}")
    tasks = materialize_tasks(builtin_tasks_dir(), top / "tasks")
    runs = {
        "lm_eval": _lm_eval(run / "merged", tasks, top / "lm_eval"),
        "lm_eval_base": _lm_eval(base, tasks, top / "lm_eval_base"),
    }
    for name, proc in runs.items():
        output, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"lm_eval ({name}) failed:\n{output[-3000:]}")
    return {
        "trainer_state": run / "trainer_state.json",
        "adapter": run / "adapter",
        "merged_model": run / "merged",
        "lm_eval": top / "lm_eval",
        "lm_eval_base": top / "lm_eval_base",
    }


def write_config(root: Path, imports: dict[str, Path], sign: dict[str, str] | None) -> None:
    import yaml
    from test_import import DECLARED

    data: dict[str, Any] = json.loads(json.dumps(DECLARED))
    data["model"] = {"base_model": "builtin:tiny-qwen3"}
    data["import"] = {key: str(value) for key, value in imports.items()}
    data["card"] = {"model_name": "tiny-qwen3 DPO (trained with a bare TRL script, imported)"}
    data["hub"] = {"repo_id": REPO, **({"sign": sign} if sign else {})}
    # As in configs/demo.yaml: the built-in base is not on the Hub, so its card cannot link one.
    data["checks"] = {
        **data.get("checks", {}),
        "allow": {"base_model_hub_id": "the built-in tiny base is not on the Hub"},
    }
    (root / "configs" / "imported.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def push_row(hub: Any, root: Path, label: str) -> dict[str, Any]:
    mark, stored = hub.mark(), hub.file_bytes
    seconds, _ = pubctl(root, "push", "imported")
    return {
        "push": label,
        "seconds": round(seconds, 2),
        "request_bytes": hub.body_bytes_since(mark),
        "file_bytes": hub.file_bytes - stored,
        "commits": sum(1 for r in hub.requests[mark:] if r.kind == "commit" and r.status == 200),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="Also write the measurements here.")
    args = parser.parse_args()

    from hub_server import HubServer

    from pipeline.demo.tiny_model import tiny_qwen3_path
    from pipeline.layout import cache_root

    hub = HubServer(hub_fixtures._reserved).start()
    steps: dict[str, float] = {}
    pushes: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pubctl-round-trip-") as tmp:
        top = Path(tmp)
        root = top / "project"
        shutil.copytree(REPO_ROOT / "configs", root / "configs")
        shutil.copytree(REPO_ROOT / "templates", root / "templates")
        start = time.perf_counter()
        imports = made_elsewhere(top, tiny_qwen3_path(cache_root(REPO_ROOT)))
        steps["bare TRL run + lm_eval CLI (tuned and base)"] = time.perf_counter() - start
        write_config(root, imports, None)
        steps["pubctl import"], _ = pubctl(root, "import", "imported")
        steps["pubctl card"], _ = pubctl(root, "card", "imported")
        steps["pubctl check"], checked = pubctl(root, "check", "imported")
        pushes.append(push_row(hub, root, "first push"))
        steps["pubctl verify REPO_ID (unsigned)"], verified = pubctl(root, "verify", REPO)

        private, public = key_pair(top / "keys")
        write_config(root, imports, {"method": "key", "private_key": str(private), "public_key": str(public)})
        pushes.append(push_row(hub, root, "signing turned on"))
        steps["pubctl verify REPO_ID (signed)"], signed = pubctl(root, "verify", REPO)
        pushes.append(push_row(hub, root, "unchanged re-push"))

    hub.stop()
    print(f"check: {checked.strip().splitlines()[-1]}")
    print(f"verify unsigned: {verified.strip().splitlines()[-1]}")
    print(f"verify signed: {signed.strip().splitlines()[-1]}")
    for step, seconds in steps.items():
        print(f"{step:<48}{seconds:>8.1f} s")
    print(f"{'push':<20}{'request bytes':>15}{'file bytes':>12}{'commits':>9}{'seconds':>9}")
    for row in pushes:
        print(
            f"{row['push']:<20}{row['request_bytes']:>15,}{row['file_bytes']:>12,}{row['commits']:>9}{row['seconds']:>9.1f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"steps": steps, "pushes": pushes}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
