"""Serving: the HTTP request contract and the predict-and-log service the
`predict`, `predictions_history`, `record_outcome` and `model_metadata` functions call."""
