"""Monitoring: the drift baseline stored with each model (`baseline`), the pure
drift statistics (`statistics`), the nightly check that reads the prediction log and
requests a retrain (`drift_check`), and its plots."""
