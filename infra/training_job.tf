# The training job: a Cloud Run job, built from this repository by Cloud Build
# (training-job.Dockerfile, whose ENTRYPOINT is the one place that names the
# job's module: the job below sets no command of its own). The
# retrain function only validates, deduplicates, stores the request and
# launches an execution with the request's id as its argument
# (`python -m jobs.train --request-id <id>`); the job trains for as long as it needs.
#
# Why a Cloud Run job rather than a Vertex AI custom job: it runs the same
# source and image as the rest of the loop, with the same Firestore, Storage and
# Pub/Sub clients and configuration, starts in seconds, takes hours (up to 24 h
# per task), and is billed per second of CPU -- while a Vertex AI custom job
# adds a training-container contract, a second SDK and a minutes-long
# provisioning step that buy nothing for CPU models of this size.

locals {
  training_job_name = "${var.name_prefix}-training"
  # The agreement shared.config.check_training_time_limits enforces:
  # deadline + 120 <= lease, and 2 x lease + 120 <= job timeout.
  training_time_limits = {
    deadline_seconds    = 3000
    lease_seconds       = 3300
    job_timeout_seconds = 7200
  }
  # A failed task (a crash, never a timeout) is retried once, in the same
  # execution, which takes its own lease back (retrain_handler.TRAINING_JOB_MAX_RETRIES).
  training_job_max_retries = 1
  # Where bootstrap.sh and Cloud Build push the image (by digest: var.training_job_image).
  training_image_repository = "${var.region}-docker.pkg.dev/${var.project_id}/${var.name_prefix}-training/training-job"
}

resource "google_artifact_registry_repository" "training" {
  #checkov:skip=CKV_GCP_84:The image holds this repository's open-source code only (no data, no secrets); set kms_key_name for a customer-managed key.
  location      = var.region
  repository_id = "${var.name_prefix}-training"
  format        = "DOCKER"
  description   = "Images of the training job, one per commit, built by Cloud Build."
  kms_key_name  = var.kms_key_name == "" ? null : var.kms_key_name
  # The Artifact Registry service agent must hold the key before the
  # repository is created with it (iam.tf).

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }

  depends_on = [google_project_service.required, google_kms_crypto_key_iam_member.service_agents]
}

resource "google_cloud_run_v2_job" "training" {
  name                = local.training_job_name
  location            = var.region
  deletion_protection = false

  template {
    task_count = 1
    template {
      timeout         = "${local.training_time_limits.job_timeout_seconds}s"
      max_retries     = local.training_job_max_retries
      service_account = google_service_account.accounts["training_job"].email

      containers {
        # An image by digest, pushed before this apply (bootstrap.sh, Cloud
        # Build): Cloud Run refuses a job whose image does not exist.
        image = var.training_job_image
        # 1 vCPU, as bench/training.py times it (taskset -c 0, OMP_NUM_THREADS=1).
        resources {
          limits = {
            cpu    = "1"
            memory = "4Gi"
          }
        }
        # The job's own variables (function_variables.json "training_job"),
        # like each function's.
        dynamic "env" {
          for_each = merge(
            local.process_environment,
            { for name, value in merge(local.deployment_settings, { FIRESTORE_DATABASE = local.function_databases["training_job"] }) : name => value if contains(local.function_variables["training_job"], name) },
          )
          content {
            name  = env.key
            value = env.value
          }
        }
      }
    }
  }

  depends_on = [google_project_service.required, google_artifact_registry_repository.training]
}

# The job's identity (iam.tf: accounts["training_job"]) gets its database
# and artifact prefixes with the functions' (iam.tf); here, the topics it
# publishes to: promotion notices, and a request whose lease stayed busy.
resource "google_pubsub_topic_iam_member" "training_job_publishes" {
  for_each = toset(["model_promoted", "retrain"])
  topic    = google_pubsub_topic.topics[each.value].name
  role     = "roles/pubsub.publisher"
  member   = "serviceAccount:${google_service_account.accounts["training_job"].email}"
}

# The retrain function may start executions of this job only, with the
# request as the execution's arguments (run.jobs.run and
# run.jobs.runWithOverrides): roles/run.jobsExecutorWithOverrides, not
# run.developer, which could also rewrite the job's image or command. No
# actAs on the training account either: overrides cannot change the identity
# an execution runs as (infra/smoke_test.sh proves the launch on a real project).
resource "google_cloud_run_v2_job_iam_member" "retrain_launches_training" {
  name     = google_cloud_run_v2_job.training.name
  location = var.region
  role     = "roles/run.jobsExecutorWithOverrides"
  member   = "serviceAccount:${google_service_account.accounts["retrain"].email}"
}

variable "training_job_image" {
  description = "Image of the training job by digest, REGION-docker.pkg.dev/PROJECT/PREFIX-training/training-job@sha256:...; bootstrap.sh and Cloud Build push it and pass it. No default: a tag that was never pushed fails the apply at Cloud Run; a missing value fails at once. For a manual apply: -var training_job_image=\"$(terraform output -raw training_job_image)\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9-]+-docker\\.pkg\\.dev/[^/]+/[^/]+/training-job@sha256:[0-9a-f]{64}$", var.training_job_image))
    error_message = "training_job_image: REGION-docker.pkg.dev/PROJECT/PREFIX-training/training-job@sha256:<64 hex>, the digest of a pushed image (infra/bootstrap.sh prints it)."
  }
}

output "training_job" {
  description = "The Cloud Run job that trains, gates and promotes."
  value       = google_cloud_run_v2_job.training.id
}

output "training_job_image" {
  description = "The image the training job runs (by digest): pass it back for a manual apply."
  value       = var.training_job_image
}

output "training_image_repository" {
  description = "Where bootstrap.sh and Cloud Build push the training job's image."
  value       = local.training_image_repository
}

