locals {
  # The deployment's values of settings from shared/config.py. A setting not
  # listed keeps the default defined there, once. Each function receives only
  # the variables it reads: function_variables.json is written from
  # shared/config.py's FUNCTION_SETTINGS, and tests/infra checks they agree.
  deployment_settings = {
    ARTIFACT_STORE            = "gcs"
    PREDICTION_STORE          = "firestore"
    EVENT_BUS                 = "pubsub"
    ARTIFACT_BUCKET           = google_storage_bucket.artifacts.name
    GOOGLE_CLOUD_PROJECT      = var.project_id
    FIRESTORE_DATABASE        = google_firestore_database.main.name
    MODEL_REFRESH_SECONDS     = tostring(var.model_refresh_seconds)
    REQUIRE_PREDICTION_LOG    = tostring(var.require_prediction_log)
    PREDICTION_RETENTION_DAYS = tostring(var.prediction_retention_days)
    RETRAIN_TOPIC             = google_pubsub_topic.topics["retrain"].name
    MODEL_PROMOTED_TOPIC      = google_pubsub_topic.topics["model_promoted"].name
    TRAINING_WINDOW_DAYS      = tostring(var.training_window_days)
    TRAINING_MIN_ROWS         = tostring(var.training_min_rows)
    TRAINING_HALF_LIFE_DAYS   = tostring(var.training_half_life_days)
    TRAINING_MAX_CALLER_SHARE = tostring(var.training_max_caller_share)
    INGEST_TABLE              = var.ingest_table
    INGEST_COLUMN_MAP         = var.ingest_column_map
    REFERENCE_DATA_URL        = var.reference_data_url
    REFERENCE_DATA_NAME       = "who_reference"

    # The training job's time limits (training_job.tf) and how retrain starts it.
    TRAINING_LEASE_SECONDS       = tostring(local.training_time_limits.lease_seconds)
    TRAINING_DEADLINE_SECONDS    = tostring(local.training_time_limits.deadline_seconds)
    TRAINING_JOB_TIMEOUT_SECONDS = tostring(local.training_time_limits.job_timeout_seconds)
    TRAINING_LAUNCHER            = "cloud_run"
    TRAINING_JOB_NAME            = "projects/${var.project_id}/locations/${var.region}/jobs/${local.training_job_name}"
  }
  function_variables = jsondecode(file("${path.module}/function_variables.json"))

  # Read by the process, not by shared/config.py.
  process_environment = {
    CODE_VERSION = var.code_version
    # OpenMP pools and forked/threaded servers do not mix (XGBoost hung here).
    OMP_NUM_THREADS = "1"
    # functions-framework's gunicorn: one process, THREADS concurrent requests.
    WORKERS = "1"
  }

  # Secrets reach only the function that needs them, from Secret Manager.
  secret_environment = {
    CLINICAL_DATABASE_URL = google_secret_manager_secret.ingestion["clinical-database-url"].secret_id
    PSEUDONYM_KEY         = google_secret_manager_secret.ingestion["pseudonym-key"].secret_id
  }
  functions_with_secrets = ["ingest_clinical"]
  # A secret read at start-up needs a version that exists: ingest_clinical is
  # deployed once the operator has added both and named them (never `latest`).
  secret_versions            = { for name, secret in google_secret_manager_secret.ingestion : secret.secret_id => lookup(var.ingestion_secret_versions, name, "") }
  clinical_ingestion_enabled = length(var.ingestion_secret_versions) > 0

  # One entry per entry point in main.py. `trigger` is "http" for functions
  # people call, "pubsub" for functions fed by a push subscription.
  functions = {
    # predict runs on one event loop (functions_framework.aio under uvicorn, one
    # worker): one vCPU is all one process uses. Requests in flight share one
    # Firestore commit (group commit), so throughput grows with concurrency: on
    # the emulator one worker served 660 / 1,540 / 1,840 req/s at 1 / 8 / 32
    # connections (bench/peer_comparison.py, 2026-11-27), CPU-bound from ~16 on:
    # a request costs ~0.4-0.5 ms of CPU. With ~10-20 ms per commit in the
    # cloud, 32 in flight (32 / 15 ms = ~2,100 req/s) keep the vCPU about busy;
    # past that the autoscaler adds instances instead of queueing on one.
    predict = {
      name   = "predict", entry_point = "predict", trigger = "http",
      memory = "1Gi", cpu = "1", timeout = 30, concurrency = 32, threads = 8, max_instances = var.predict_max_instances
    }
    predictions_history = {
      name   = "predictions-history", entry_point = "predictions_history", trigger = "http",
      memory = "512Mi", cpu = "1", timeout = 30, concurrency = 8, threads = 8, max_instances = 5
    }
    model_metadata = {
      name   = "model", entry_point = "model_metadata", trigger = "http",
      memory = "1Gi", cpu = "1", timeout = 30, concurrency = 8, threads = 8, max_instances = 3
    }
    record_outcome = {
      name   = "record-outcome", entry_point = "record_outcome", trigger = "http",
      memory = "512Mi", cpu = "1", timeout = 30, concurrency = 8, threads = 8, max_instances = 5
    }
    # The operations console: read-only pages for people (console_invoker_members, iam.tf).
    console = {
      name   = "console", entry_point = "console", trigger = "http",
      memory = "512Mi", cpu = "1", timeout = 30, concurrency = 8, threads = 8, max_instances = 2
    }
    # One check at a time per instance; two instances, because two schedules
    # feed this one subscription (the hourly aggregate at :10, the nightly
    # check): a nightly check still running at :10 must not make the hourly
    # message meet a 429 and spend its delivery attempts. Each check is
    # idempotent by its report or aggregate id, so a redelivery running beside
    # the first attempt writes the same documents. retrain only launches the
    # training job (infra/training_job.tf).
    drift_check = {
      name   = "drift-check", entry_point = "drift_check", trigger = "pubsub",
      memory = "1Gi", cpu = "1", timeout = 540, concurrency = 1, threads = 1, max_instances = 2
    }
    retrain = {
      name   = "retrain", entry_point = "retrain", trigger = "pubsub",
      memory = "512Mi", cpu = "1", timeout = 60, concurrency = 1, threads = 1, max_instances = 1
    }
    # Chunked: memory is bounded by INGEST_CHUNK_ROWS, not the table.
    ingest_clinical = {
      name   = "ingest-clinical", entry_point = "ingest_clinical", trigger = "pubsub",
      memory = "2Gi", cpu = "1", timeout = 540, concurrency = 1, threads = 1, max_instances = 1
    }
    ingest_reference = {
      name   = "ingest-reference", entry_point = "ingest_reference", trigger = "pubsub",
      memory = "1Gi", cpu = "1", timeout = 300, concurrency = 1, threads = 1, max_instances = 1
    }
  }
  deployed_functions = { for key, fn in local.functions : key => fn if key != "ingest_clinical" || local.clinical_ingestion_enabled }
}

resource "google_cloudfunctions2_function" "functions" {
  for_each    = local.deployed_functions
  name        = "${var.name_prefix}-${each.value.name}"
  location    = var.region
  description = "Clinical risk MLOps loop: ${each.value.entry_point}"

  build_config {
    runtime     = "python311"
    entry_point = each.value.entry_point
    # A build identity of our own: projects created since mid-2024 would
    # otherwise build as an under-privileged default account.
    service_account   = google_service_account.accounts["function_build"].id
    docker_repository = google_artifact_registry_repository.functions.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = each.value.memory
    available_cpu                    = each.value.cpu
    timeout_seconds                  = each.value.timeout
    max_instance_request_concurrency = each.value.concurrency
    min_instance_count               = 0
    max_instance_count               = each.value.max_instances
    service_account_email            = google_service_account.accounts[each.key].email
    all_traffic_on_latest_revision   = true
    # HTTP functions are reached by their callers (IAM still required);
    # event functions only by Pub/Sub push from this project.
    ingress_settings = each.value.trigger == "http" ? var.http_ingress : "ALLOW_INTERNAL_ONLY"
    environment_variables = merge(
      local.process_environment,
      # FIRESTORE_DATABASE: the one database this function is granted (firestore.tf).
      { for name, value in merge(local.deployment_settings, { FIRESTORE_DATABASE = local.function_databases[each.key] }) : name => value if contains(local.function_variables[each.key], name) },
      { THREADS = tostring(each.value.threads) },
    )
    vpc_connector = contains(local.functions_with_secrets, each.key) && var.vpc_connector != "" ? var.vpc_connector : null

    dynamic "secret_environment_variables" {
      for_each = contains(local.functions_with_secrets, each.key) ? local.secret_environment : {}
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = local.secret_versions[secret_environment_variables.value]
      }
    }
  }

  # The platform checks at deploy time that the runtime identity may read its
  # secrets and the build identity its source and repository.
  depends_on = [
    google_project_service.required,
    google_secret_manager_secret_iam_member.ingestion,
    google_project_iam_member.function_build_logs,
    google_project_iam_member.function_build_staged_source,
    google_storage_bucket_iam_member.function_build_source,
    google_artifact_registry_repository_iam_member.function_build,
  ]
}

resource "google_secret_manager_secret" "ingestion" {
  for_each  = toset(["clinical-database-url", "pseudonym-key"])
  secret_id = "${var.name_prefix}-${each.value}"

  # Health-service credentials stay in the deployment's region (no global
  # `auto` replication).
  replication {
    user_managed {
      replicas {
        location = var.region
      }
    }
  }

  # Replication cannot change in place: on a deployment created with `auto`,
  # Terraform would replace the secret and destroy its versions (the pseudonym
  # key among them: every patient would get a new pseudonym). Such a
  # deployment keeps its secrets; infra/README.md step 5 says how to move them.
  lifecycle {
    ignore_changes = [replication]
  }

  depends_on = [google_project_service.required]
}

variable "http_ingress" {
  description = "Ingress of the HTTP functions. ALLOW_ALL: reachable at their run.app URLs, every caller still needs an identity token of an invoker_members principal. ALLOW_INTERNAL_AND_GCLB only once you have put your own load balancer in front (none is defined here): it refuses every outside caller of the run.app URLs."
  type        = string
  default     = "ALLOW_ALL"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.http_ingress)
    error_message = "http_ingress must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

# Images of the function builds: a repository of our own, so the build
# identity writes here and nowhere else; old images are cleaned up, the
# newest of each function kept.
resource "google_artifact_registry_repository" "functions" {
  #checkov:skip=CKV_GCP_84:The images hold this open-source code and public pinned dependencies only -- no data, no secrets (secrets come from Secret Manager at run time).
  location      = var.region
  repository_id = "${var.name_prefix}-functions"
  description   = "Container images built from the function source"
  format        = "DOCKER"

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 5
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s"
    }
  }

  depends_on = [google_project_service.required]
}
