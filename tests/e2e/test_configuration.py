"""A bad configuration value stops the process at start, naming the variable:
the local server and one function run alone, as deployed."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize("command", [
    [sys.executable, "local_server.py"],
    [sys.executable, "-m", "functions_framework", "--target", "predict", "--source", "main.py", "--port", "0"],
], ids=["local_server", "functions_framework"])
def test_a_bad_value_refuses_to_start_naming_the_variable(command, tmp_path):
    env = dict(os.environ, MAX_BATCH_SIZE="abc", LOCAL_DATA_DIR=str(tmp_path), PORT="0")
    finished = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert finished.returncode != 0
    assert "MAX_BATCH_SIZE has an invalid value: 'abc'" in finished.stderr
