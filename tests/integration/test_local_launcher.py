"""The local launcher behaves like Cloud Run's: `launch` returns once the job
has started, not when it ends; a job that fails is run once more (Cloud Run's
`max_retries`); whoever needs the result waits for it explicitly."""

import time

from shared.training.launcher.local import LocalTrainingLauncher


def stand_in_job(tmp_path, script: str):
    """An executable that takes the job's arguments and runs `script` (a real process)."""
    path = tmp_path / "job.sh"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return str(path)


def test_launch_returns_once_the_job_started_and_the_result_is_waited_for(tmp_path):
    launcher = LocalTrainingLauncher(python=stand_in_job(tmp_path, "sleep 2"))
    started = time.monotonic()
    launcher.launch("retrain-r-1")
    assert time.monotonic() - started < 1.0
    [process] = launcher.processes
    assert process.poll() is None  # still running: the caller was answered first
    assert process.args[1:] == ["-m", "jobs.train", "--request-id", "retrain-r-1"]
    launcher.wait_all(timeout=30)
    assert process.returncode == 0


def test_a_failed_job_is_run_once_more_then_left_to_the_heartbeat_rule(tmp_path):
    launcher = LocalTrainingLauncher(python=stand_in_job(tmp_path, "exit 1"))
    launcher.launch("retrain-r-2")
    launcher.wait_all(timeout=30)
    assert [process.returncode for process in launcher.processes] == [1, 1]
