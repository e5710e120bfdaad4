"""Cloud Functions entry points. Each deploys from the repository root with
`--entry-point NAME`; the code lives in `functions/` and `shared/`."""

import flask

from functions.drift_check import drift_check
from functions.ingest_clinical import ingest_clinical
from functions.ingest_reference import ingest_reference
from functions.model_metadata import model_metadata
from functions.predict import predict
from functions.predictions_history import predictions_history
from functions.record_outcome import record_outcome
from functions.retrain import retrain

if flask.has_app_context():  # functions-framework runs this module inside each app it creates
    from functions import event_adapter

    event_adapter.refuse_unparseable_events(flask.current_app)  # a 4xx, not a crash, for a body it cannot parse

__all__ = [
    "drift_check", "ingest_clinical", "ingest_reference", "model_metadata", "predict", "predictions_history",
    "record_outcome", "retrain",
]
