# One service account per function, each with only what its code does.
# Firestore grants only at project level (no per-collection IAM), so the
# datastore roles are project bindings; everything else is bound on the
# bucket or topic itself.
resource "google_service_account" "functions" {
  for_each     = local.functions
  account_id   = substr("${var.name_prefix}-${replace(each.value.name, "_", "-")}", 0, 30)
  display_name = "Cloud Function ${each.value.entry_point}"
}

locals {
  firestore_roles = {
    predict             = "roles/datastore.user"   # writes prediction records
    predictions_history = "roles/datastore.viewer" # reads them
    record_outcome      = "roles/datastore.user"   # updates one field of a record
    drift_check         = "roles/datastore.user"   # reads records, writes reports
    retrain             = "roles/datastore.user"   # reads outcomes, writes experiments, leases
    ingest_clinical     = "roles/datastore.user"   # watermark and run summaries
    ingest_reference    = "roles/datastore.user"   # run summaries
  }
  artifact_roles = {
    predict        = "roles/storage.objectViewer" # loads the champion
    model_metadata = "roles/storage.objectViewer"
    drift_check    = "roles/storage.objectUser" # reads baselines, writes reports and plots
    retrain        = "roles/storage.objectUser" # registers versions, switches the pointer
  }
  publishers = {
    drift_check = "retrain"        # drift -> retrain request
    retrain     = "model_promoted" # promotion notice
  }
}

resource "google_project_iam_member" "firestore" {
  for_each = local.firestore_roles
  project  = var.project_id
  role     = each.value
  member   = "serviceAccount:${google_service_account.functions[each.key].email}"
}

resource "google_storage_bucket_iam_member" "artifacts" {
  for_each = local.artifact_roles
  bucket   = google_storage_bucket.artifacts.name
  role     = each.value
  member   = "serviceAccount:${google_service_account.functions[each.key].email}"
}

resource "google_pubsub_topic_iam_member" "publishers" {
  for_each = local.publishers
  topic    = google_pubsub_topic.topics[each.value].name
  role     = "roles/pubsub.publisher"
  member   = "serviceAccount:${google_service_account.functions[each.key].email}"
}

# Callers of the HTTP functions: a named list, never allUsers.
locals {
  http_invokers = {
    for pair in setproduct([for key, fn in local.functions : key if fn.trigger == "http"], var.invoker_members) :
    "${pair[0]}|${pair[1]}" => { function = pair[0], member = pair[1] }
  }
}

resource "google_cloud_run_service_iam_member" "http_invokers" {
  for_each = local.http_invokers
  location = var.region
  service  = google_cloudfunctions2_function.functions[each.value.function].name
  role     = "roles/run.invoker"
  member   = each.value.member
}

# Pub/Sub pushes to the event functions with this identity's OIDC token.
resource "google_service_account" "pubsub_pusher" {
  account_id   = "${var.name_prefix}-pubsub-pusher"
  display_name = "Pub/Sub push to the event functions"
}

resource "google_cloud_run_service_iam_member" "pusher_invokes_event_functions" {
  for_each = local.event_subscriptions
  location = var.region
  service  = google_cloudfunctions2_function.functions[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.pubsub_pusher.email}"
}

# The Pub/Sub service agent mints the push tokens for that identity only.
resource "google_service_account_iam_member" "pubsub_token_creator" {
  service_account_id = google_service_account.pubsub_pusher.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

# The ingestion functions write only under lake/ in the artifact bucket
# (listing is a bucket-level permission, hence the second clause).
resource "google_storage_bucket_iam_member" "lake_writers" {
  for_each = toset(["ingest_clinical", "ingest_reference"])
  bucket   = google_storage_bucket.artifacts.name
  role     = "roles/storage.objectUser"
  member   = "serviceAccount:${google_service_account.functions[each.key].email}"

  condition {
    title      = "lake-only"
    expression = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.artifacts.name}/objects/lake/\") || resource.type == \"storage.googleapis.com/Bucket\""
  }
}

resource "google_secret_manager_secret_iam_member" "ingestion" {
  for_each  = google_secret_manager_secret.ingestion
  secret_id = each.value.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.functions["ingest_clinical"].email}"
}
