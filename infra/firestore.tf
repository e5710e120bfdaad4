# One database per deployment (name_prefix): several deployments can share a
# project, and each function's Firestore grant is conditioned on this one.
resource "google_firestore_database" "main" {
  name                    = "${var.name_prefix}-records"
  location_id             = var.firestore_location
  type                    = "FIRESTORE_NATIVE"
  concurrency_mode        = "OPTIMISTIC"
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  deletion_policy         = "ABANDON"

  depends_on = [google_project_service.required]
}

# The ingestion functions' watermark and run summaries live in a database of
# their own: Firestore IAM stops at the database, so this is what keeps them
# from reading prediction records.
resource "google_firestore_database" "ingestion" {
  name                    = "${var.name_prefix}-ingestion"
  location_id             = var.firestore_location
  type                    = "FIRESTORE_NATIVE"
  concurrency_mode        = "OPTIMISTIC"
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  deletion_policy         = "ABANDON"

  depends_on = [google_project_service.required]
}

locals {
  # FIRESTORE_DATABASE of each function, and the one database its grant covers.
  function_databases = {
    predict             = google_firestore_database.main.name
    predictions_history = google_firestore_database.main.name
    model_metadata      = google_firestore_database.main.name
    record_outcome      = google_firestore_database.main.name
    console             = google_firestore_database.main.name
    drift_check         = google_firestore_database.main.name
    retrain             = google_firestore_database.main.name
    training_job        = google_firestore_database.main.name
    ingest_clinical     = google_firestore_database.ingestion.name
    ingest_reference    = google_firestore_database.ingestion.name
  }
}

# Every query this project makes orders or filters on one field
# (created_at, outcome_label, outcome_recorded_at), which Firestore's automatic single-field
# indexes serve; no composite index is needed. The probabilities map is never
# queried, so it is not indexed (cheaper writes).
resource "google_firestore_field" "prediction_probabilities" {
  database   = google_firestore_database.main.name
  collection = "predictions"
  field      = "probabilities"

  index_config {}
}

# Prediction records expire `prediction_retention_days` after creation:
# each record carries `expire_at`, and this TTL policy deletes it.
resource "google_firestore_field" "prediction_ttl" {
  database   = google_firestore_database.main.name
  collection = "predictions"
  field      = "expire_at"

  ttl_config {}
  index_config {}
}
