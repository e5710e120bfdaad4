"""Training: bootstrap data (`synthetic_data`), the candidate search
(`candidates`, with its parts `holdout`, `search`, `calibration`,
`decision_rule`, `evaluation`), one training run end to end (`runs`), the
promotion gate (`promotion_gate`, `paired_comparison`), and the handler of
Pub/Sub retrain requests (`retrain_handler`)."""
