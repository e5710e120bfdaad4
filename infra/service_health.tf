# The service as its users see it, and what it costs: predict's latency and
# server errors, an uptime check on the model endpoint, a monthly budget. All
# page var.alert_notification_channels (alerts.tf), like every other alert.

variable "predict_latency_p99_ms" {
  description = "predict's 99th-percentile request latency (ms) above which, for 10 minutes, an alert opens."
  type        = number
  default     = 1000
}

variable "billing_account" {
  description = "Billing account id (XXXXXX-XXXXXX-XXXXXX) of the project, for the monthly budget alert; required for a production deployment (the deploying identity needs roles/billing.costsManager on it). Empty: no budget."
  type        = string
  default     = ""

  validation {
    condition     = var.environment != "production" || var.billing_account != ""
    error_message = "billing_account: a production deployment sets a budget alert; give the billing account id."
  }
}

variable "monthly_budget" {
  description = "Monthly budget of the project in budget_currency units; alerts at 50 %, 90 % and 100 % of it."
  type        = number
  default     = 500
}

variable "budget_currency" {
  description = "Currency of monthly_budget: the billing account's currency (ISO 4217)."
  type        = string
  default     = "EUR"
}

# --- predict: latency and server errors -------------------------------------------------------

locals {
  predict_service_filter = "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = \"${google_cloudfunctions2_function.functions["predict"].name}\""
}

resource "google_monitoring_alert_policy" "predict_latency" {
  display_name = "${var.name_prefix}: predict is slow (p99 over ${var.predict_latency_p99_ms} ms)"
  combiner     = "OR"
  severity     = "WARNING"

  conditions {
    display_name = "predict p99 latency"
    condition_threshold {
      filter          = "${local.predict_service_filter} AND metric.type = \"run.googleapis.com/request_latencies\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.predict_latency_p99_ms
      duration        = "600s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_PERCENTILE_99"
        cross_series_reducer = "REDUCE_MAX"
      }
    }
  }

  notification_channels = var.alert_notification_channels
  depends_on            = [google_project_service.required]
}

resource "google_monitoring_alert_policy" "predict_errors" {
  display_name = "${var.name_prefix}: predict answers 5xx"
  combiner     = "OR"
  severity     = "ERROR"

  conditions {
    display_name = "more than 1 % of predict's requests answered 5xx"
    condition_threshold {
      filter             = "${local.predict_service_filter} AND metric.type = \"run.googleapis.com/request_count\" AND metric.labels.response_code_class = \"5xx\""
      denominator_filter = "${local.predict_service_filter} AND metric.type = \"run.googleapis.com/request_count\""
      comparison         = "COMPARISON_GT"
      threshold_value    = 0.01
      duration           = "300s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
      denominator_aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A 503 `no verified model` is expected until the first model is promoted (infra/README.md, step 6); any other 5xx is a fault: read predict's ERROR lines."
  }

  notification_channels = var.alert_notification_channels
  depends_on            = [google_project_service.required]
}

# --- an uptime check on the read-only model endpoint -------------------------------------------

# GET /model answers 200 with the serving model once one exists, and writes
# nothing (an uptime check on /predict would store a prediction record per probe).
# The check signs its requests as the Monitoring service agent (iam.tf grants it
# the invoker role on this one function).
resource "google_monitoring_uptime_check_config" "model" {
  display_name = "${var.name_prefix}: the model endpoint answers"
  timeout      = "10s"
  period       = "300s"

  http_check {
    path           = "/"
    port           = 443
    use_ssl        = true
    validate_ssl   = true
    request_method = "GET"
    accepted_response_status_codes {
      status_class = "STATUS_CLASS_2XX"
    }
    service_agent_authentication {
      type = "OIDC_TOKEN"
    }
  }

  monitored_resource {
    type = "uptime_url"
    labels = {
      project_id = var.project_id
      host       = trimprefix(google_cloudfunctions2_function.functions["model_metadata"].service_config[0].uri, "https://")
    }
  }

  depends_on = [google_project_service.required, google_cloud_run_service_iam_member.uptime_check_invokes_model]
}

resource "google_monitoring_alert_policy" "model_uptime" {
  display_name = "${var.name_prefix}: the model endpoint does not answer"
  combiner     = "OR"
  severity     = "ERROR"

  conditions {
    display_name = "uptime check failing from more than one region"
    condition_threshold {
      filter          = "metric.type = \"monitoring.googleapis.com/uptime_check/check_passed\" AND resource.type = \"uptime_url\" AND metric.labels.check_id = \"${google_monitoring_uptime_check_config.model.uptime_check_id}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 1
      duration        = "600s"
      aggregations {
        alignment_period     = "1200s"
        per_series_aligner   = "ALIGN_NEXT_OLDER"
        cross_series_reducer = "REDUCE_COUNT_FALSE"
        group_by_fields      = ["resource.label.*"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "GET on the model function failed from several regions. Until the first model is promoted it answers 503 (expected during bootstrap); afterwards read its logs."
  }

  notification_channels = var.alert_notification_channels
  depends_on            = [google_project_service.required]
}

# --- spend --------------------------------------------------------------------------------------

resource "google_billing_budget" "monthly" {
  count           = var.billing_account == "" ? 0 : 1
  billing_account = var.billing_account
  display_name    = "${var.name_prefix}: monthly spend"

  budget_filter {
    projects = ["projects/${data.google_project.this.number}"]
  }

  amount {
    specified_amount {
      currency_code = var.budget_currency
      units         = tostring(var.monthly_budget)
    }
  }

  dynamic "threshold_rules" {
    for_each = [0.5, 0.9, 1.0]
    content {
      threshold_percent = threshold_rules.value
    }
  }

  all_updates_rule {
    monitoring_notification_channels = var.alert_notification_channels
  }

  depends_on = [google_project_service.required]
}
