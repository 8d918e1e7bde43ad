"""Training as several processes: the launch command, and the status file its workers answer through.

The stage validates everything in the launching process, then runs
``python -m pipeline.stages.train.worker`` N times (torch.distributed.run on
CPU, accelerate launch on GPUs). The workers write nothing under cards/: rank 0
answers through a status file the launcher named, holding either
``{"record": <TrainingRecord>}`` or ``{"exit_code": N, "message": "..."}`` (a
user error every rank raised, printed once by the launcher). The launcher hands
the record back to the stage, and the chain records it like a one-process run's.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.console import is_verbose
from pipeline.errors import PubctlError, StageFailed, UsageError
from pipeline.refs import project_path

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig
    from pipeline.layout import Layout
    from pipeline.results import TrainingRecord

STATUS_ENV = "PUBCTL_TRAIN_STATUS"
"""The status file rank 0 of a multi-process run answers through (its record, or a user error)."""
WORKER_MODULE = "pipeline.stages.train.worker"


def in_worker() -> bool:
    """Whether this process is one rank of a multi-process run (set up by a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch_command(config: ReleaseConfig, layout: Layout, *, resume: bool, on_gpu: bool) -> list[str]:
    """The command that runs the train worker as launcher.num_processes processes."""
    launcher = config.training.launcher
    port = str(launcher.main_process_port or _free_port())
    worker = [str(config.path), "--root", str(layout.root), "--resume" if resume else "--no-resume"]
    if on_gpu:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(launcher.num_processes)]
        command += ["--main_process_port", port]
        if launcher.config_file:
            config_file = project_path(launcher.config_file, layout.root)
            if not config_file.is_file():
                raise UsageError(f"training.launcher.config_file: no accelerate config at {config_file}.")
            command += ["--config_file", str(config_file)]
        return [*command, "-m", WORKER_MODULE, *worker]
    # accelerate launch --cpu runs a single process; torch's own launcher starts the N gloo ranks.
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc_per_node",
        str(launcher.num_processes),
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        port,
        "-m",
        WORKER_MODULE,
        *worker,
    ]


def launch(config: ReleaseConfig, layout: Layout, *, resume: bool) -> TrainingRecord:
    """Run the training as several processes and return the record rank 0 reported."""
    import torch

    if config.path is None:
        raise UsageError("multi-process training needs a config loaded from a file (the workers load it again).")
    command = launch_command(config, layout, resume=resume, on_gpu=torch.cuda.is_available())
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".train-status-", suffix=".json", dir=layout.run_dir)
    os.close(fd)
    status = Path(name)
    env = {**os.environ, STATUS_ENV: str(status), "PUBCTL_ROOT": str(layout.root)}
    if is_verbose():
        env["PUBCTL_VERBOSE"] = "1"  # the workers show their libraries' output too
    try:
        completed = subprocess.run(command, env=env, check=False)
        reported = json.loads(status.read_text(encoding="utf-8")) if status.stat().st_size else {}
    finally:
        status.unlink(missing_ok=True)
    if "exit_code" in reported:
        error = StageFailed if reported["exit_code"] == StageFailed.exit_code else UsageError
        raise error(reported["message"])
    if completed.returncode != 0:
        raise StageFailed(
            f"multi-process training of '{config.name}' failed (exit {completed.returncode} from "
            f"{' '.join(command[:4])} ...); see the worker output above and in {layout.logs_dir}/train*.log. "
            "Nothing was recorded."
        )
    if "record" not in reported:
        raise StageFailed(f"the training workers of '{config.name}' exited without reporting a training record.")
    from pipeline.results import TrainingRecord

    return TrainingRecord.model_validate(reported["record"])


def _report(payload: dict[str, Any]) -> bool:
    """Write ``payload`` to the launcher's status file (rank 0 only); False when no launcher is listening."""
    path = os.environ.get(STATUS_ENV)
    if not path:
        return False
    if int(os.environ.get("RANK", "0")) == 0:
        from pipeline.atomic import atomic_write_text

        atomic_write_text(Path(path), json.dumps(payload))
    return True


def report_record(record: TrainingRecord) -> bool:
    """Hand rank 0's training record to the launching stage; False when there is no launcher to tell."""
    # exclude_unset: the record read back must hold the same fields as the one built (absent stays absent).
    return _report({"record": record.model_dump(mode="json", exclude_unset=True)})


def report_worker_error(exc: PubctlError) -> bool:
    """Hand a user error to the launching stage, which prints it once; False when there is none to tell.

    Every rank raises the same error; rank 0 reports it and the others stay quiet.
    """
    return _report({"exit_code": exc.exit_code, "message": str(exc)})
