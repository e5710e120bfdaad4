"""Issue 3's training benchmark: the full search (three families, CV, the
default time budget) on 50,000 and 200,000 reference rows, each in its own
process so peak memory (max RSS) is that run's alone."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
from bench.memory import peak_rss_mb
from collections import defaultdict
from shared.training.synthetic_data import generate_reference_data
from shared.training.candidates import train_candidates
rows, budget = int(sys.argv[1]), float(sys.argv[2])
X, y = generate_reference_data(rows, seed=42)
phases = defaultdict(float)
started = time.perf_counter()
result = train_candidates(X, y, seed=42, budget_seconds=budget)
total = time.perf_counter() - started
print(json.dumps({
    "rows": rows, "seconds": round(total, 1), "winner": result.winner.family,
    "winner_macro_f1": result.winner.metrics["macro_f1"], "budget_exhausted": result.budget_exhausted,
    "candidates": {c.family: {"macro_f1": c.metrics["macro_f1"], "configs_searched": len(c.searched),
                              "search_seconds": round(sum(s["seconds"] for s in c.searched), 1),
                              "refit_seconds": round(c.training_seconds, 1),
                              "artifact_mb": round(len(c.artifact_bytes) / 1e6, 3),
                              "latency_ms": round(c.latency_ms, 3)} for c in result.candidates},
    "peak_rss_mb": peak_rss_mb(),
}))
"""


def run(rows: int, budget: float) -> dict:
    started = time.perf_counter()
    output = subprocess.run([sys.executable, "-c", CHILD, str(rows), str(budget)], capture_output=True, text=True,
                            check=True, cwd=ROOT, env={"OMP_NUM_THREADS": "2", "PATH": "/usr/bin:/bin"})
    result = json.loads(output.stdout.strip().splitlines()[-1])
    result["wall_seconds_with_data_generation"] = round(time.perf_counter() - started, 1)
    return result


def main(quick: bool = False) -> dict:
    sizes = [5_000] if quick else [50_000, 200_000]
    results = {}
    for rows in sizes:
        results[str(rows)] = run(rows, budget=240.0)
        print(rows, json.dumps(results[str(rows)]), file=sys.stderr)
    return results


if __name__ == "__main__":
    print(json.dumps(main(quick="--quick" in sys.argv), indent=2))
