"""Prediction store: `port.PredictionStore`; adapters `sqlite` and `firestore`; `cursor` is the paging codec."""

from shared.stores.predictions.port import PredictionStore

__all__ = ["PredictionStore"]
