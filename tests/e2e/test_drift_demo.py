"""`tools/drift_demo.py` against `make run`'s server: with the retrain waiting
for labels in the changed region, the demo sends the next shifted, labelled
night before it waits for a new champion (its extra-night path)."""

import io
import os

import pytest

from shared import wiring
from tests.e2e.server import LocalServer

QUICK_TRAINING = {"TRAINING_FAMILIES": "xgboost", "TRAINING_ROWS": "3000", "TRAINING_MIN_ROWS": "3000",
                  "SEARCH_BUDGET_SECONDS": "0", "MODEL_REFRESH_SECONDS": "1"}


@pytest.mark.slow
def test_the_demo_sends_another_labelled_night_while_the_retrain_waits(tmp_path):
    from tools.drift_demo import run_demo

    data = str(tmp_path / "data")
    server = LocalServer({"LOCAL_DATA_DIR": data, **QUICK_TRAINING}).start()
    try:
        os.environ.update(LOCAL_DATA_DIR=data, **QUICK_TRAINING)  # the demo reads the server's reports
        wiring.reset()
        out = io.StringIO()
        status = run_demo(server.url, rows=600, wait_seconds=240, out=out)
    finally:
        server.stop()
    lines = out.getvalue().splitlines()
    waiting = [line for line in lines if "waiting for labels:" in line]
    assert len(waiting) == 1 and "in the changed region (night 1 of at most 2)" in waiting[0], lines
    assert any(line.startswith("sending a day of shifted, the next night, traffic") for line in lines), lines
    requested = lines.index(next(line for line in lines if line.startswith("retrain requested (")))
    assert "shifted, the next night," in "".join(lines[:requested]) and "None" not in lines[requested]
    assert any(line.startswith("new champion served: ") for line in lines), lines
    assert status == 0 and lines[-1] == "the shift was learned: no drift on the shifted population", lines
