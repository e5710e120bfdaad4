"""Loaded by Python at start when this folder is on PYTHONPATH: records, in the
file named by IMPORT_AUDIT_LOG, every import of a module whose top-level
package is watched and every unpickling (the `pickle.find_class` audit event,
and calls of `pickle.load`/`pickle.loads`). Used by
`test_predict_process_imports.py` on a `functions-framework` process."""

import os
import pickle
import sys

_LOG = os.environ.get("IMPORT_AUDIT_LOG")
_WATCHED = {"sklearn", "scipy", "xgboost", "joblib", "onnx", "onnxruntime"}
_busy = False


def _record(line: str) -> None:
    global _busy
    if _busy:
        return
    _busy = True
    try:
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(line + "\n")
    finally:
        _busy = False


def _hook(event, args):
    if event == "import" and str(args[0]).split(".")[0] in _WATCHED:
        _record(f"import {args[0]}")
    elif event == "pickle.find_class":
        _record(f"unpickle {args[0]}.{args[1]}")


def _watched(name, function):
    def wrapper(*args, **kwargs):
        _record(f"call pickle.{name}")
        return function(*args, **kwargs)
    return wrapper


if _LOG:
    sys.addaudithook(_hook)
    pickle.load = _watched("load", pickle.load)
    pickle.loads = _watched("loads", pickle.loads)
