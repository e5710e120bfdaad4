variable "project_id" {
  description = "Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region for functions, buckets, Firestore and Cloud Scheduler."
  type        = string
  default     = "europe-west1"
}

variable "firestore_location" {
  description = "Firestore location: a region (normally var.region) or a multi-region such as eur3. No default: it cannot change once the databases exist (a new location means new databases), so each deployment's tfvars states it."
  type        = string
}

variable "environment" {
  description = "production, staging or development. A production deployment must name its alert channels and billing account (alerts.tf, service_health.tf)."
  type        = string

  validation {
    condition     = contains(["production", "staging", "development"], var.environment)
    error_message = "environment: production, staging or development."
  }
}

variable "name_prefix" {
  description = "Prefix for every resource name, so several deployments can share a project (each with its own Firestore database and state prefix). 2 to 12 characters: service account ids are <prefix>-<suffix> and may not exceed 30."
  type        = string
  default     = "mlops"

  validation {
    condition     = length(var.name_prefix) <= 12 && can(regex("^[a-z][a-z0-9-]*[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix: 2 to 12 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "invoker_members" {
  description = "Principals allowed to call the HTTP functions, e.g. [\"group:clinical-apps@example.org\", \"serviceAccount:app@proj.iam.gserviceaccount.com\"]. Never allUsers."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for member in var.invoker_members : !contains(["allUsers", "allAuthenticatedUsers"], member)])
    error_message = "Public invokers are not allowed: list named principals."
  }
}

# Per-function invokers (issue 26). predict and the readers fall back to
# invoker_members when left null; record_outcome has a list of its own, empty
# by default: nobody may send labels until someone is named here.
variable "predict_invokers" {
  description = "Principals allowed to call predict (null: invoker_members)."
  type        = list(string)
  default     = null

  validation {
    condition     = var.predict_invokers == null ? true : alltrue([for member in var.predict_invokers : !contains(["allUsers", "allAuthenticatedUsers"], member)])
    error_message = "Public invokers are not allowed: list named principals."
  }
}

variable "reader_invokers" {
  description = "Principals allowed to call predictions-history and model (null: invoker_members)."
  type        = list(string)
  default     = null

  validation {
    condition     = var.reader_invokers == null ? true : alltrue([for member in var.reader_invokers : !contains(["allUsers", "allAuthenticatedUsers"], member)])
    error_message = "Public invokers are not allowed: list named principals."
  }
}

variable "labeller_members" {
  description = "Principals allowed to call record-outcome: clinicians' applications only, whose ID token's email is recorded with every label."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for member in var.labeller_members : !contains(["allUsers", "allAuthenticatedUsers"], member)])
    error_message = "Public invokers are not allowed: list named principals."
  }
}

variable "console_invoker_members" {
  description = "Principals allowed to open the operations console (read-only pages), e.g. [\"group:ml-ops@example.org\"]. Never allUsers."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for member in var.console_invoker_members : !contains(["allUsers", "allAuthenticatedUsers"], member)])
    error_message = "Public invokers are not allowed: list named principals."
  }
}

variable "drift_schedule" {
  description = "Cron schedule of the nightly drift check. Default 02:20: after the hourly aggregate of :10 has counted the last closed hour, away from the next one."
  type        = string
  default     = "20 2 * * *"
}

variable "schedule_time_zone" {
  description = "Time zone of every Cloud Scheduler job (tz database name)."
  type        = string
  default     = "Etc/UTC"
}

variable "prediction_retention_days" {
  description = "Days a prediction record is kept before Firestore's TTL policy deletes it."
  type        = number
  default     = 365
}

variable "model_refresh_seconds" {
  description = "How often a warm instance re-reads the champion pointer."
  type        = number
  default     = 30
}

variable "require_prediction_log" {
  description = "Answer a prediction only once its record is committed (recommended)."
  type        = bool
  default     = true
}

variable "predict_max_instances" {
  description = "Upper bound on predict instances (cost and Firestore write-rate guard)."
  type        = number
  default     = 20
}

variable "noncurrent_version_days" {
  description = "Days to keep noncurrent object versions in the artifact bucket."
  type        = number
  default     = 90
}

variable "kms_key_name" {
  description = "Optional Cloud KMS key (projects/P/locations/REGION/keyRings/R/cryptoKeys/K, in var.region) for the buckets and topics; the Storage and Pub/Sub service agents are granted it. Empty: Google-managed keys."
  type        = string
  default     = ""
}

variable "ingestion_secret_versions" {
  description = "Secret Manager version of each ingestion secret, e.g. {\"clinical-database-url\" = \"1\", \"pseudonym-key\" = \"1\"}. Empty until you have added them (infra/README.md): ingest_clinical, its subscription and its schedule are deployed only once both are set."
  type        = map(string)
  default     = {}

  validation {
    condition = length(var.ingestion_secret_versions) == 0 || (
      toset(keys(var.ingestion_secret_versions)) == toset(["clinical-database-url", "pseudonym-key"])
      && alltrue([for version in values(var.ingestion_secret_versions) : can(regex("^[1-9][0-9]*$", version))])
    )
    error_message = "ingestion_secret_versions: empty, or both clinical-database-url and pseudonym-key with a version number (not latest)."
  }
}

variable "data_access_audit_logs" {
  description = "Record Data Access audit logs (reads and writes) for Cloud Storage and Firestore in this project: who touched which prediction record or model artifact."
  type        = bool
  default     = true
}

variable "training_window_days" {
  description = "Days of labelled production data (outcomes and clinical lake partitions) a retrain learns from."
  type        = number
  default     = 28
}

variable "training_min_rows" {
  description = "Labelled production rows below which a retrain tops classes up with synthetic reference rows."
  type        = number
  default     = 2000
}

variable "training_half_life_days" {
  description = "A labelled row's training weight halves every this many days of age."
  type        = number
  default     = 2
}

variable "training_max_caller_share" {
  description = "At most this share of a window's outcome labels from one caller is trained on (its newest); a window with a single labeller is kept whole."
  type        = number
  default     = 0.5
  validation {
    condition     = var.training_max_caller_share > 0 && var.training_max_caller_share <= 1
    error_message = "training_max_caller_share must be greater than 0 and at most 1."
  }
}

variable "ingest_table" {
  description = "Source table of clinical records in PostgreSQL (schema.table allowed)."
  type        = string
  default     = "clinical_records"
}

variable "ingest_column_map" {
  description = "JSON mapping of the canonical columns (id, patient_id, recorded_at, temperature, temperature_unit, heart_rate, blood_pressure, diagnosis) to the source's names; empty: same names."
  type        = string
  default     = ""
}

variable "reference_data_url" {
  description = "WHO GHO OData URL of the reference data set downloaded weekly."
  type        = string
  default     = "https://ghoapi.azureedge.net/api/WHOSIS_000001"
}

variable "vpc_connector" {
  description = "Serverless VPC Access connector for reaching a private-IP Cloud SQL from ingest_clinical (empty: none)."
  type        = string
  default     = ""
}

variable "clinical_ingestion_schedule" {
  description = "Cron schedule of the daily clinical ingestion."
  type        = string
  default     = "30 1 * * *"
}

variable "reference_ingestion_schedule" {
  description = "Cron schedule of the weekly reference data download."
  type        = string
  default     = "0 3 * * 1"
}

variable "code_version" {
  description = "Commit being deployed; recorded in experiment records (Cloud Build passes $SHORT_SHA)."
  type        = string
  default     = "unknown"
}
