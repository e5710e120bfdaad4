"""The three storage ports, each a package with `port.py` beside its adapters:
`artifacts/` (folder | Cloud Storage), `predictions/` (SQLite | Firestore),
`metadata/` (SQLite | Firestore). `sqlite_database` is the local file they share."""
