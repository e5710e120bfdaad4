locals {
  topics = {
    drift_check      = "${var.name_prefix}-drift-check-requests"
    retrain          = "${var.name_prefix}-retrain-requests"
    model_promoted   = "${var.name_prefix}-model-promoted"
    ingest_clinical  = "${var.name_prefix}-ingest-clinical-requests"
    ingest_reference = "${var.name_prefix}-ingest-reference-requests"
  }
  # Event functions and the topic each one consumes (tests/emulators.py
  # creates the same routes against the emulator).
  event_subscriptions = {
    drift_check      = "drift_check"
    retrain          = "retrain"
    ingest_clinical  = "ingest_clinical"
    ingest_reference = "ingest_reference"
  }
  deployed_subscriptions = { for key, topic in local.event_subscriptions : key => topic if contains(keys(local.deployed_functions), key) }
  pubsub_service_agent   = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic" "topics" {
  #checkov:skip=CKV_GCP_83:Messages carry report ids, windows and model versions only -- no health data; set kms_key_name to use a customer-managed key.
  for_each                   = local.topics
  kms_key_name               = var.kms_key_name == "" ? null : var.kms_key_name
  name                       = each.value
  message_retention_duration = "604800s"

  depends_on = [google_project_service.required, google_kms_crypto_key_iam_member.service_agents]
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Dead letters are copies of the messages above (no health data); kms_key_name applies when set.
  for_each                   = local.event_subscriptions
  kms_key_name               = var.kms_key_name == "" ? null : var.kms_key_name
  name                       = "${local.topics[each.value]}-dead-letter"
  message_retention_duration = "604800s"

  depends_on = [google_project_service.required, google_kms_crypto_key_iam_member.service_agents]
}

# Dead letters are kept for inspection; an alert fires on any message waiting
# here (alerts.tf), so none is silently lost.
resource "google_pubsub_subscription" "dead_letter" {
  for_each                   = local.event_subscriptions
  name                       = "${google_pubsub_topic.dead_letter[each.key].name}-inspect"
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  message_retention_duration = "604800s"
  expiration_policy {
    ttl = ""
  }
}

# Push subscriptions deliver each topic to its event function, with bounded
# retries and a dead-letter topic. (An Eventarc trigger's own subscription
# retries for 7 days and cannot be given a dead-letter topic from Terraform;
# functions-framework converts this push payload into the same CloudEvent.)
resource "google_pubsub_subscription" "events" {
  for_each = local.deployed_subscriptions
  name     = "${local.topics[each.value]}-to-${local.functions[each.key].name}"
  topic    = google_pubsub_topic.topics[each.value].id

  ack_deadline_seconds       = 600
  message_retention_duration = "604800s"

  push_config {
    push_endpoint = google_cloudfunctions2_function.functions[each.key].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.accounts["pubsub_pusher"].email
      audience              = google_cloudfunctions2_function.functions[each.key].service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.key].id
    max_delivery_attempts = 5
  }

  expiration_policy {
    ttl = ""
  }
}

# The Pub/Sub service agent forwards undeliverable messages to the dead-letter
# topics and acknowledges them on the source subscriptions.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.event_subscriptions
  topic    = google_pubsub_topic.dead_letter[each.key].name
  role     = "roles/pubsub.publisher"
  member   = local.pubsub_service_agent

  depends_on = [google_project_service.required]
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each     = local.deployed_subscriptions
  subscription = google_pubsub_subscription.events[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent

  depends_on = [google_project_service.required]
}
