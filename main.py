"""Cloud Functions entry points. Each deploys from the repository root with
`--entry-point NAME`; the code lives in `functions/` and `shared/`."""

from functions.model_metadata import model_metadata
from functions.predict import predict
from functions.predictions_history import predictions_history

__all__ = ["model_metadata", "predict", "predictions_history"]
