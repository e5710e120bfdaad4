"""Cloud Function entry points: thin adapters over `shared/`.

Each module parses its trigger, calls one service function and maps domain
errors to status codes. The root `main.py` re-exports them all.
"""
