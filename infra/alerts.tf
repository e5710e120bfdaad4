# Nothing silently lost: every dead-letter topic, and every training that ends
# without a model, pages someone. Messages on a dead-letter topic stay on its
# `-inspect` subscription (7 days) for a person to read and republish.

variable "alert_notification_channels" {
  description = "Cloud Monitoring notification channel ids (projects/P/notificationChannels/N) the alerts go to; empty: alerts open incidents in the console only."
  type        = list(string)
  default     = []
}

resource "google_project_service" "monitoring" {
  service            = "monitoring.googleapis.com"
  disable_on_destroy = false
}

# One policy per dead-letter subscription: any message waiting there is an
# incident, so a request that failed five deliveries is never just dropped.
resource "google_monitoring_alert_policy" "dead_letters" {
  for_each     = local.event_subscriptions
  display_name = "${var.name_prefix}: a ${each.value} request reached its dead-letter topic"
  combiner     = "OR"
  severity     = "ERROR"

  conditions {
    display_name = "undelivered messages on ${google_pubsub_subscription.dead_letter[each.key].name}"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${google_pubsub_subscription.dead_letter[each.key].name}\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A message on `${google_pubsub_topic.dead_letter[each.key].name}` failed 5 deliveries to its function. Read it with `gcloud pubsub subscriptions pull ${google_pubsub_subscription.dead_letter[each.key].name} --limit 10`, fix the cause, and republish it on `${google_pubsub_topic.topics[each.value].name}`; the function deduplicates, so republishing twice is harmless."
  }

  notification_channels = var.alert_notification_channels
  depends_on            = [google_project_service.monitoring]
}

# The training job logs one ERROR line for every request it cannot settle
# with a model (its deadline, bad data, an unpublished model-promoted notice,
# a task that will be retried): counted here, alerted on below.
resource "google_logging_metric" "training_failures" {
  name        = "${var.name_prefix}-training-job-failures"
  description = "ERROR lines of the training job (shared.training.job)."
  filter      = "resource.type = \"cloud_run_job\" AND resource.labels.job_name = \"${google_cloud_run_v2_job.training.name}\" AND severity >= ERROR"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
}

resource "google_monitoring_alert_policy" "training_failures" {
  display_name = "${var.name_prefix}: a training job failed"
  combiner     = "OR"
  severity     = "ERROR"

  conditions {
    display_name = "ERROR lines from the training job"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_job\" AND metric.type = \"logging.googleapis.com/user/${google_logging_metric.training_failures.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_SUM"
      }
    }
  }

  # An execution whose every task failed (killed at its time limit, out of
  # memory) logs nothing itself; Cloud Run counts it.
  conditions {
    display_name = "failed executions of the training job"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_job\" AND resource.labels.job_name = \"${google_cloud_run_v2_job.training.name}\" AND metric.type = \"run.googleapis.com/job/completed_execution_count\" AND metric.labels.result = \"failed\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The training job could not settle a retrain request. Its `processed_events` and `training_requests` documents in Firestore say which and why; `experiments` holds the failed run. A request whose job died is launched again by the next delivery of the same request once every attempt's time limit has passed."
  }

  notification_channels = var.alert_notification_channels
  depends_on            = [google_project_service.monitoring]
}

# issue-24: every message an event function refuses (functions/event_adapter.py
# and shared/event_bus/schemas.py) is acknowledged -- Pub/Sub will not
# redeliver it -- and logged at ERROR as "message dropped...". Counted here,
# alerted on below: a refused message is a publisher to fix, never silence.
# The "stranded" request the retrain function gives up on after every launch
# died logs "training request failed..." and is counted too.
resource "google_logging_metric" "refused_messages" {
  name        = "${var.name_prefix}-refused-messages"
  description = "Messages the event functions acknowledged without processing (schema, size, depth), and retrain requests given up after every launch died."
  filter      = "resource.type = \"cloud_run_revision\" AND severity >= ERROR AND (jsonPayload.message =~ \"^message dropped\" OR jsonPayload.message =~ \"^training request failed\")"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
}

resource "google_monitoring_alert_policy" "refused_messages" {
  display_name = "${var.name_prefix}: an event function refused a message"
  combiner     = "OR"
  severity     = "WARNING"

  conditions {
    display_name = "messages refused by the event functions"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND metric.type = \"logging.googleapis.com/user/${google_logging_metric.refused_messages.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "An event function acknowledged a message it refused (its log line gives the reason and the field, never the value), or gave up a retrain request whose training job died on every launch (`training_requests` shows it as failed). Fix the publisher; republish a corrected message if the work is still wanted."
  }

  notification_channels = var.alert_notification_channels
  depends_on            = [google_project_service.monitoring]
}
