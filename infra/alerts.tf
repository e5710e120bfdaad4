# Every failure that loses work pages someone: a message on a dead-letter
# topic, a message dropped because no retry could fix it, a training that ends
# without a model, a crashed function, a Cloud Scheduler run that failed, a
# predict that is slow or answers 5xx, a model endpoint that stops answering,
# and spend past the budget. Messages on a dead-letter topic stay on its
# `-inspect` subscription (7 days) for a person to read and republish.

variable "alert_notification_channels" {
  description = "Cloud Monitoring notification channel ids (projects/P/notificationChannels/N) every alert and the budget go to. No default: a production deployment must name at least one (an alert that pages nobody is no alert); other environments may pass [] and read incidents in the console."
  type        = list(string)

  validation {
    condition     = var.environment != "production" || length(var.alert_notification_channels) > 0
    error_message = "alert_notification_channels: a production deployment needs at least one notification channel (gcloud beta monitoring channels create ...; see infra/README.md)."
  }
  validation {
    condition     = alltrue([for channel in var.alert_notification_channels : can(regex("^projects/[^/]+/notificationChannels/[0-9]+$", channel))])
    error_message = "alert_notification_channels: each entry is projects/PROJECT/notificationChannels/NUMBER."
  }
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
  depends_on            = [google_project_service.required]
}

# --- log-based metrics, and the wait before an alert may use them -----------------------------

locals {
  # Every Cloud Run service of this deployment (a gen2 function's service is named like the function).
  service_name_filter = "resource.labels.service_name =~ \"^${var.name_prefix}-\""
  log_metrics = {
    # The training job logs one ERROR line for every request it cannot settle
    # with a model (its deadline, bad data, an unpublished model-promoted notice,
    # a task that will be retried).
    training_failures = {
      name        = "training-job-failures"
      description = "ERROR lines of the training job."
      filter      = "resource.type = \"cloud_run_job\" AND resource.labels.job_name = \"${local.training_job_name}\" AND severity >= ERROR"
    }
    # functions/event_adapter.py acknowledges a message no retry can fix and
    # logs "message dropped ..." at ERROR: without this it would reach no
    # dead-letter topic and page nobody.
    dropped_messages = {
      name        = "dropped-messages"
      description = "Messages an event function acknowledged without handling them (no retry could fix them)."
      filter      = "resource.type = \"cloud_run_revision\" AND ${local.service_name_filter} AND severity >= ERROR AND jsonPayload.message =~ \"^message dropped\""
    }
    # shared/training/retrain_handler.py gives up a request whose training job
    # died on every launch (MAX_LAUNCHES) and logs "training request failed ..."
    # at ERROR: the request is settled as failed, never silently gone.
    abandoned_requests = {
      name        = "abandoned-training-requests"
      description = "Retrain requests given up after their training job died on every launch."
      filter      = "resource.type = \"cloud_run_revision\" AND ${local.service_name_filter} AND severity >= ERROR AND jsonPayload.message =~ \"^training request failed\""
    }
    # Cloud Run's own ERROR lines: a container that crashed, ran out of memory
    # or failed to start (a bad setting fails the start, naming the variable).
    function_crashes = {
      name        = "function-crashes"
      description = "Container crashes, out-of-memory kills and failed starts of this deployment's functions."
      filter      = "resource.type = \"cloud_run_revision\" AND ${local.service_name_filter} AND log_id(\"run.googleapis.com/varlog/system\") AND severity >= ERROR"
    }
    # A Cloud Scheduler attempt that could not publish (its AttemptFinished line is an ERROR).
    scheduler_failures = {
      name        = "scheduler-failures"
      description = "Failed attempts of this deployment's Cloud Scheduler jobs."
      filter      = "resource.type = \"cloud_scheduler_job\" AND resource.labels.job_id =~ \"^${var.name_prefix}-\" AND severity >= ERROR"
    }
  }
}

resource "google_logging_metric" "counts" {
  for_each    = local.log_metrics
  name        = "${var.name_prefix}-${each.value.name}"
  description = each.value.description
  filter      = each.value.filter
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }

  depends_on = [google_project_service.required]
}

# A log-based metric answers 404 to an alert policy for up to ~10 minutes
# after it is created ("Cannot find metric(s) ... could take up to 10 minutes",
# hashicorp/terraform-provider-google#11102, open): the policies below wait
# for this, which waits for the metrics, and waits again whenever the set of
# metrics changes. Should a slow project still answer 404, `apply` again:
# everything else is already in place and the second run only adds the policies.
resource "time_sleep" "log_metrics_usable" {
  create_duration = "300s"
  triggers = {
    metrics = join(",", sort([for metric in google_logging_metric.counts : metric.name]))
  }
}

resource "google_monitoring_alert_policy" "log_metrics" {
  for_each     = local.log_metrics
  display_name = "${var.name_prefix}: ${each.value.description}"
  combiner     = "OR"
  severity     = "ERROR"

  conditions {
    display_name = each.value.description
    condition_threshold {
      filter          = "metric.type = \"logging.googleapis.com/user/${google_logging_metric.counts[each.key].name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Lines counted by the log-based metric `${google_logging_metric.counts[each.key].name}`; read them in Logs Explorer with its filter: `${each.value.filter}`. A dropped message names its `reason` and `field`; a training failure's request is in the `processed_events` and `training_requests` documents."
  }

  notification_channels = var.alert_notification_channels
  depends_on            = [google_project_service.required, google_logging_metric.counts, time_sleep.log_metrics_usable]
}

# An execution whose every task failed (killed at its time limit, out of
# memory) logs nothing itself; Cloud Run counts it. A built-in metric: no wait.
resource "google_monitoring_alert_policy" "training_executions" {
  display_name = "${var.name_prefix}: a training job execution failed"
  combiner     = "OR"
  severity     = "ERROR"

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
    content   = "The training job could not settle a retrain request. Its `processed_events` and `training_requests` documents in Firestore say which and why; `experiments` holds the failed run. A request whose job died is taken over once its lease misses two heartbeats; the hourly sweep sends it back to retrain, which relaunches it (at most retrain_handler.MAX_LAUNCHES launches) before settling it as failed."
  }

  notification_channels = var.alert_notification_channels
  depends_on            = [google_project_service.required]
}

# Renamed in place: the training job's metric and policy keep their history.
moved {
  from = google_logging_metric.training_failures
  to   = google_logging_metric.counts["training_failures"]
}

moved {
  from = google_monitoring_alert_policy.training_failures
  to   = google_monitoring_alert_policy.training_executions
}
