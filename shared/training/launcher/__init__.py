"""Launching the training job: `port.py`, a local subprocess adapter
(`local.py`) and a Cloud Run jobs adapter (`cloud_run.py`)."""
