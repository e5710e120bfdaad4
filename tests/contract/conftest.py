"""Each port's contract runs against both of its adapters: the local one and the
Google Cloud one on its emulator, so a behaviour cannot differ unnoticed."""

from __future__ import annotations

import pytest

from shared import wiring


@pytest.fixture(params=["sqlite", "firestore"])
def prediction_store(request):
    if request.param == "firestore":
        request.getfixturevalue("firestore_env")
    return wiring.prediction_store()


@pytest.fixture(params=["local", "gcs"])
def artifact_store(request):
    if request.param == "gcs":
        request.getfixturevalue("gcs_env")
    return wiring.artifact_store()
