"""`make bench`: every benchmark, figures printed and saved in bench/results/.

`python -m bench.run_all serving training drift` runs a subset; `--quick`
shortens each for a smoke run.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

BENCHMARKS = ["serving", "peer_comparison", "inference", "training", "drift", "drift_hourly", "drift_decisions",
              "performance_estimation",
              "rare_class", "load_test", "ingestion", "outcome_contention", "loop_simulation", "fail_safe",
              "promotion_gate", "contradictions", "console", "prediction_log", "serving_profile"]


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    chosen = [name for name in argv if not name.startswith("--")] or BENCHMARKS
    results_dir = Path(__file__).with_name("results")
    results_dir.mkdir(exist_ok=True)
    for name in chosen:
        module = importlib.import_module(f"bench.{name}")
        print(f"== {name}", file=sys.stderr, flush=True)
        result = module.main(quick=quick)
        (results_dir / f"{name}.json").write_text(json.dumps(result, indent=2))
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
