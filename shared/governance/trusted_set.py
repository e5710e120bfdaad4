"""The trusted evaluation set: rows whose labels do not come from `record_outcome`.

A challenger trained on poisoned outcomes also looks good on a holdout cut
from them; it cannot look good on labels the attacker never touched. An
operator uploads a curated, versioned set (`cli trusted-set upload`: CSV or
Parquet with the features and `label`); each upload is a new version named
by its content's hash, and `current.json` points at the one in use. Until
one is uploaded, rows drawn from the synthetic reference generator (the
curated bootstrap the first model learnt from, with a seed of its own so
they are not the training rows) stand in, and every record says so.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import numpy as np

from shared.errors import NotFound, TrainingDataError
from shared.schema import FEATURES, LABELS

PREFIX = "trusted/evaluation/"
CURRENT = PREFIX + "current.json"
REFERENCE_ROWS = 4000
REFERENCE_SEED = 20_260_101  # not TRAINING_SEED: these rows are not the bootstrap's training rows


def upload(store, X: np.ndarray, y: np.ndarray, *, by: str, now: datetime | None = None) -> dict:
    """Store a new version of the trusted set and make it current; returns its description."""
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=object)
    unknown = sorted(set(map(str, y)) - set(LABELS))
    if not len(y) or X.shape != (len(y), len(FEATURES)) or unknown:
        raise TrainingDataError(f"a trusted set needs rows of {', '.join(FEATURES)} and a known label"
                                + (f"; unknown labels: {', '.join(unknown)}" if unknown else ""))
    body = json.dumps({"features": list(FEATURES), "X": X.tolist(), "y": [str(v) for v in y]}).encode()
    version = hashlib.sha256(body).hexdigest()[:16]
    store.write_bytes(f"{PREFIX}{version}.json", body, "application/json")
    description = {"source": "uploaded", "version": version, "rows": int(len(y)), "uploaded_by": by,
                   "uploaded_at": (now or datetime.now(timezone.utc)).isoformat()}
    store.write_bytes(CURRENT, json.dumps(description).encode(), "application/json")
    return description


def load(store) -> tuple[np.ndarray, np.ndarray, dict]:
    """(X, y, description) of the current trusted set, else the reference stand-in."""
    try:
        description = json.loads(store.read_bytes(CURRENT))
        document = json.loads(store.read_bytes(f"{PREFIX}{description['version']}.json"))
        return np.asarray(document["X"], dtype=float), np.asarray(document["y"], dtype=object), description
    except NotFound:
        from shared.training.synthetic_data import generate_reference_data

        X, y = generate_reference_data(REFERENCE_ROWS, seed=REFERENCE_SEED)
        return X, y, {"source": "reference_generator", "version": f"seed-{REFERENCE_SEED}", "rows": REFERENCE_ROWS}
