"""Ingestion into the Parquet lake: PostgreSQL clinical records, cleaned and
de-identified (`clinical`, `cleaning`, `deidentification`), a public reference data set
(`public_dataset`), and the lake layout (`lake`)."""
