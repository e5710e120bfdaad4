# One database per deployment (name_prefix): several deployments can share a
# project, and each function's Firestore grant is conditioned on this one.
resource "google_firestore_database" "main" {
  name                    = "${var.name_prefix}-records"
  location_id             = var.firestore_location
  type                    = "FIRESTORE_NATIVE"
  concurrency_mode        = "OPTIMISTIC"
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  deletion_policy         = "ABANDON"
  # Reads of any minute of the last 7 days: a bad write (a wrong champion
  # pointer, a faulty labeller) can be undone by reading the data as it was.
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"

  depends_on = [google_project_service.required]
}

# The ingestion functions' watermark and run summaries live in a database of
# their own: Firestore IAM stops at the database, so this is what keeps them
# from reading prediction records.
resource "google_firestore_database" "ingestion" {
  name                              = "${var.name_prefix}-ingestion"
  location_id                       = var.firestore_location
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "OPTIMISTIC"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  deletion_policy                   = "ABANDON"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"

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

# Per-caller hourly outcome counters (record_outcome's limit) carry `expire_at`,
# a day after their hour: this TTL policy deletes them.
resource "google_firestore_field" "outcome_rates_ttl" {
  database   = google_firestore_database.main.name
  collection = "outcome_rates"
  field      = "expire_at"

  ttl_config {}
  index_config {}
}

# Backups beyond PITR's 7 days: a daily one kept 7 days (the longest a daily
# schedule allows) and a weekly one kept 14 weeks (the longest a weekly one
# allows), for both databases. A backup is restored into a new database
# (gcloud firestore databases restore); it outlives the database it came from.
locals {
  firestore_backups = {
    for pair in setproduct(["main", "ingestion"], ["daily", "weekly"]) : "${pair[0]}-${pair[1]}" => {
      database = pair[0] == "main" ? google_firestore_database.main.name : google_firestore_database.ingestion.name
      weekly   = pair[1] == "weekly"
    }
  }
}

resource "google_firestore_backup_schedule" "backups" {
  for_each  = local.firestore_backups
  database  = each.value.database
  retention = each.value.weekly ? "8467200s" : "604800s" # 14 weeks, 7 days

  dynamic "daily_recurrence" {
    for_each = each.value.weekly ? [] : [1]
    content {}
  }

  dynamic "weekly_recurrence" {
    for_each = each.value.weekly ? [1] : []
    content {
      day = "SUNDAY"
    }
  }
}
