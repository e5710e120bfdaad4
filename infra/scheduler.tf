# The nightly drift check: Cloud Scheduler publishes a drift-check request;
# its push subscription delivers it to the drift_check function.
resource "google_cloud_scheduler_job" "nightly_drift_check" {
  name        = "${var.name_prefix}-nightly-drift-check"
  description = "Checks the last 24 h of predictions against the champion's baseline."
  region      = var.region
  schedule    = var.drift_schedule
  time_zone   = var.drift_time_zone

  pubsub_target {
    topic_name = google_pubsub_topic.topics["drift_check"].id
    data       = base64encode(jsonencode({ window_hours = 24, source = "cloud-scheduler" }))
    attributes = { source = "cloud-scheduler" }
  }

  retry_config {
    retry_count = 3
  }

  depends_on = [google_project_service.required]
}

resource "google_cloud_scheduler_job" "daily_clinical_ingestion" {
  name        = "${var.name_prefix}-daily-clinical-ingestion"
  description = "Extracts the clinical records added since the last run into the lake."
  region      = var.region
  schedule    = var.clinical_ingestion_schedule
  time_zone   = var.drift_time_zone

  pubsub_target {
    topic_name = google_pubsub_topic.topics["ingest_clinical"].id
    data       = base64encode(jsonencode({ source = "cloud-scheduler" }))
  }

  retry_config {
    retry_count = 3
  }

  depends_on = [google_project_service.required]
}

resource "google_cloud_scheduler_job" "weekly_reference_ingestion" {
  name        = "${var.name_prefix}-weekly-reference-ingestion"
  description = "Downloads the public reference data set into the lake."
  region      = var.region
  schedule    = var.reference_ingestion_schedule
  time_zone   = var.drift_time_zone

  pubsub_target {
    topic_name = google_pubsub_topic.topics["ingest_reference"].id
    data       = base64encode(jsonencode({ source = "cloud-scheduler" }))
  }

  retry_config {
    retry_count = 3
  }

  depends_on = [google_project_service.required]
}
