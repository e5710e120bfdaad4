# Cloud Scheduler publishes a request on a topic; the topic's push
# subscription delivers it to the matching event function.
locals {
  schedules = {
    nightly-drift-check = {
      topic       = "drift_check"
      schedule    = var.drift_schedule
      description = "Checks the last 24 closed hours of predictions against the champion's baseline, merging their hourly aggregates."
      data        = { window_hours = 24, aggregation = "hourly", source = "cloud-scheduler" }
    }
    # Counts each hour once, after it closed, so the nightly check's cost does
    # not grow with the day's traffic (shared/monitoring/hourly_aggregates.py).
    hourly-drift-aggregate = {
      topic       = "drift_check"
      schedule    = "10 * * * *"
      description = "Counts the hour that just closed into the champion baseline's bins."
      data        = { aggregate_hour = "last_closed", source = "cloud-scheduler" }
    }
    daily-clinical-ingestion = {
      topic       = "ingest_clinical"
      schedule    = var.clinical_ingestion_schedule
      description = "Extracts the clinical records added since the last run into the lake."
      data        = { source = "cloud-scheduler" }
    }
    weekly-reference-ingestion = {
      topic       = "ingest_reference"
      schedule    = var.reference_ingestion_schedule
      description = "Downloads the public reference data set into the lake."
      data        = { source = "cloud-scheduler" }
    }
  }
}

resource "google_cloud_scheduler_job" "jobs" {
  # The clinical ingestion is scheduled only once it is deployed (its secrets have versions).
  for_each    = { for name, job in local.schedules : name => job if job.topic != "ingest_clinical" || local.clinical_ingestion_enabled }
  name        = "${var.name_prefix}-${each.key}"
  description = each.value.description
  region      = var.region
  schedule    = each.value.schedule
  time_zone   = var.schedule_time_zone

  pubsub_target {
    topic_name = google_pubsub_topic.topics[each.value.topic].id
    data       = base64encode(jsonencode(each.value.data))
    attributes = { source = "cloud-scheduler" }
  }

  retry_config {
    retry_count = 3
  }

  depends_on = [google_project_service.required]
}
