terraform {
  # 1.9: a variable's validation may refer to another variable
  # (alert_notification_channels checks var.environment).
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.14"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.7"
    }
    # time_sleep: a new log-based metric takes minutes to become usable by an
    # alert policy (alerts.tf).
    time = {
      source  = "hashicorp/time"
      version = "~> 0.12"
    }
  }

  # State lives in a bucket you create once (see infra/README.md), under a
  # prefix per deployment when several share the bucket:
  #   terraform init -backend-config="bucket=YOUR_STATE_BUCKET" -backend-config="prefix=YOUR_DEPLOYMENT"
  # (the prefix below is only the default).
  backend "gcs" {
    prefix = "mlops-clinical-risk"
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
  # The budget API (service_health.tf) needs a quota project when the caller is a
  # person (bootstrap.sh run with user credentials): bill calls to this one.
  user_project_override = true
  billing_project       = var.project_id
}
