"""Batch entry points beside `functions/`: run as processes (a Cloud Run job),
not as functions. They parse their arguments and call `shared/`."""
