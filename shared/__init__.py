"""Everything the Cloud Functions run, testable without HTTP (no Flask here).

Capabilities, one package each:
- `serving/`: parse a request, predict, log the prediction, record outcomes.
- `models/`: the model artifact layout, the one model-loading module, the registry.
- `training/`: candidate search, training runs, the promotion gate, retrain requests.
- `monitoring/`: the drift baseline, drift statistics, the nightly drift check, plots.
- `ingestion/`: PostgreSQL and public data into the Parquet lake, de-identified.

Ports and their adapters:
- `stores/artifacts/`, `stores/predictions/`, `stores/metadata/`: `port.py` beside
  one local adapter and one Google Cloud adapter each.
- `event_bus/`: `port.py`, `local.py`, `pubsub.py`.

Cross-cutting: `config` (settings per function), `errors` (the exception tree),
`schema` (labels, features, input parsing), `records` (domain records),
`structured_logging`, and `wiring` (the one place that builds adapters).
"""
