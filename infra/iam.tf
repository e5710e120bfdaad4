# One service account per function, one for Pub/Sub push and one for the
# function builds, each with only what its code does. Every data grant is
# narrowed by a condition to this deployment's database or to the object
# prefixes the function touches.
locals {
  # account_id = "<name_prefix>-<suffix>" must be 6 to 30 characters: with
  # name_prefix at most 12, a suffix may have at most 17 (tests/infra checks).
  service_accounts = {
    predict             = "predict"
    predictions_history = "history"
    model_metadata      = "model"
    record_outcome      = "outcome"
    drift_check         = "drift-check"
    retrain             = "retrain"
    training_job        = "training-job"
    ingest_clinical     = "ingest-clinical"
    ingest_reference    = "ingest-reference"
    pubsub_pusher       = "pubsub-pusher"
    function_build      = "function-build"
  }
}

resource "google_service_account" "accounts" {
  for_each     = local.service_accounts
  account_id   = "${var.name_prefix}-${each.value}"
  display_name = "${var.name_prefix}: ${replace(each.key, "_", " ")}"

  # iam.googleapis.com is off in a new project: creating an account before
  # it is enabled fails (tests/infra checks this dependency).
  depends_on = [google_project_service.required]
}

# Firestore has no per-collection IAM: the narrowest grant is one database,
# which is why every deployment has its own, and the ingestion another
# (firestore.tf): each function's grant covers only the database it uses.
#
# A known limit, not fixed here: IAM conditions on Firestore can name a
# database (resource.name) but not a collection, so record_outcome's
# datastore.user on the records database also lets its identity write
# `promotions` or `champion_history` (its code never does). Closing that needs
# those collections in a database of their own -- a change to the metadata
# store's wiring, left to the governance work (issue 26).
locals {
  firestore_roles = {
    predict             = "roles/datastore.user"   # writes prediction records
    predictions_history = "roles/datastore.viewer" # reads them
    record_outcome      = "roles/datastore.user"   # updates one field of a record
    drift_check         = "roles/datastore.user"   # reads records, writes reports
    retrain             = "roles/datastore.user"   # processed events, launched training requests
    training_job        = "roles/datastore.user"   # reads outcomes, writes experiments, leases
    ingest_clinical     = "roles/datastore.user"   # watermark and run summaries
    ingest_reference    = "roles/datastore.user"   # run summaries
  }
}

resource "google_project_iam_member" "firestore" {
  for_each = local.firestore_roles
  project  = var.project_id
  role     = each.value
  member   = "serviceAccount:${google_service_account.accounts[each.key].email}"

  condition {
    title      = "own-database"
    expression = "resource.name == \"projects/${var.project_id}/databases/${local.function_databases[each.key]}\""
  }
}

# The artifact bucket, by object prefix. A read grant covers listing only
# under the same prefixes (storage.objects.list is checked on the bucket with
# the request's prefix), so no function can even list names outside them.
locals {
  artifact_access = {
    predict_models        = { account = "predict", role = "roles/storage.objectViewer", prefixes = ["models/"] }
    model_metadata_models = { account = "model_metadata", role = "roles/storage.objectViewer", prefixes = ["models/"] }
    # Baselines and the newest lake partition in; reports and plots out.
    drift_check_inputs  = { account = "drift_check", role = "roles/storage.objectViewer", prefixes = ["models/", "lake/clinical/"] }
    drift_check_reports = { account = "drift_check", role = "roles/storage.objectUser", prefixes = ["reports/drift/"] }
    # The training job registers versions and switches the champion pointer;
    # trains on the lake. (The retrain function only launches it.)
    training_job_models = { account = "training_job", role = "roles/storage.objectUser", prefixes = ["models/"] }
    training_job_lake   = { account = "training_job", role = "roles/storage.objectViewer", prefixes = ["lake/clinical/"] }
    ingest_clinical_lake = {
      account = "ingest_clinical", role = "roles/storage.objectUser", prefixes = ["lake/clinical/", "lake/quarantine/clinical/"]
    }
    ingest_reference_lake = { account = "ingest_reference", role = "roles/storage.objectUser", prefixes = ["lake/reference/"] }
  }
  artifact_objects = "projects/_/buckets/${google_storage_bucket.artifacts.name}/objects/"
}

resource "google_storage_bucket_iam_member" "artifacts" {
  for_each = local.artifact_access
  bucket   = google_storage_bucket.artifacts.name
  role     = each.value.role
  member   = "serviceAccount:${google_service_account.accounts[each.value.account].email}"

  condition {
    title = replace(each.key, "_", "-")
    expression = join(" || ", concat(
      [for prefix in each.value.prefixes : "resource.name.startsWith(\"${local.artifact_objects}${prefix}\")"],
      [for prefix in each.value.prefixes :
      "(resource.type == \"storage.googleapis.com/Bucket\" && api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"${prefix}\"))"],
    ))
  }
}

locals {
  publishers = {
    drift_check = "retrain" # drift -> retrain request
  }
}

resource "google_pubsub_topic_iam_member" "publishers" {
  for_each = local.publishers
  topic    = google_pubsub_topic.topics[each.value].name
  role     = "roles/pubsub.publisher"
  member   = "serviceAccount:${google_service_account.accounts[each.key].email}"
}

# Callers of the HTTP functions: named lists, never allUsers. Each HTTP
# function gets its own list: var.invoker_members unless
# local.function_specific_invokers names one for it (for example
# `record_outcome = var.labeller_members`: the labellers only).
locals {
  # issue 26: predicting, reading history and metadata, and recording
  # outcomes are granted separately; record_outcome, whose labels retraining
  # learns from, only to the labeller list (empty by default).
  function_specific_invokers = {
    predict             = coalesce(var.predict_invokers, var.invoker_members)
    predictions_history = coalesce(var.reader_invokers, var.invoker_members)
    model_metadata      = coalesce(var.reader_invokers, var.invoker_members)
    record_outcome      = var.labeller_members
  }
  http_function_invokers = {
    for key, fn in local.deployed_functions : key => lookup(local.function_specific_invokers, key, var.invoker_members)
    if fn.trigger == "http"
  }
  http_invokers = merge([
    for function, members in local.http_function_invokers : {
      for member in members : "${function}|${member}" => { function = function, member = member }
    }
  ]...)
}

resource "google_cloud_run_service_iam_member" "http_invokers" {
  for_each = local.http_invokers
  location = var.region
  service  = google_cloudfunctions2_function.functions[each.value.function].name
  role     = "roles/run.invoker"
  member   = each.value.member
}

# Pub/Sub pushes to the event functions with the pusher's OIDC token.
resource "google_cloud_run_service_iam_member" "pusher_invokes_event_functions" {
  for_each = local.deployed_subscriptions
  location = var.region
  service  = google_cloudfunctions2_function.functions[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.accounts["pubsub_pusher"].email}"
}

# The Pub/Sub service agent mints the push tokens for that identity only.
resource "google_service_account_iam_member" "pubsub_token_creator" {
  service_account_id = google_service_account.accounts["pubsub_pusher"].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent

  # The Pub/Sub service agent exists once pubsub.googleapis.com is enabled.
  depends_on = [google_project_service.required]
}

# The uptime check (service_health.tf) calls the model function as the Monitoring
# service agent: that one function, read-only.
resource "google_cloud_run_service_iam_member" "uptime_check_invokes_model" {
  location = var.region
  service  = google_cloudfunctions2_function.functions["model_metadata"].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-monitoring-notification.iam.gserviceaccount.com"

  depends_on = [google_project_service.required]
}

resource "google_secret_manager_secret_iam_member" "ingestion" {
  for_each  = google_secret_manager_secret.ingestion
  secret_id = each.value.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.accounts["ingest_clinical"].email}"
}

# The function builds: logs, the image repository, and the source archive
# (Cloud Functions copies it into its gcf-v2-sources bucket, which the build
# then reads: "You must grant Storage Object Viewer permission to <build account>").
resource "google_project_iam_member" "function_build_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.accounts["function_build"].email}"
}

resource "google_project_iam_member" "function_build_staged_source" {
  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = "serviceAccount:${google_service_account.accounts["function_build"].email}"

  condition {
    title      = "function-sources-bucket"
    expression = "resource.name.startsWith(\"projects/_/buckets/gcf-v2-sources-${data.google_project.this.number}-${var.region}/\")"
  }
}

resource "google_storage_bucket_iam_member" "function_build_source" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.accounts["function_build"].email}"
}

resource "google_artifact_registry_repository_iam_member" "function_build" {
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.accounts["function_build"].email}"
}

# Customer-managed keys: the service agents that encrypt on our behalf must
# be allowed to use the key, before the buckets, topics and the training
# image repository are created.
data "google_storage_project_service_account" "this" {}

resource "google_kms_crypto_key_iam_member" "service_agents" {
  for_each = var.kms_key_name == "" ? {} : {
    storage          = "serviceAccount:${data.google_storage_project_service_account.this.email_address}"
    pubsub           = local.pubsub_service_agent
    artifactregistry = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-artifactregistry.iam.gserviceaccount.com"
  }
  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = each.value

  depends_on = [google_project_service.required]
}
