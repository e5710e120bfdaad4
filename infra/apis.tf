# Every API the deployment uses, enabled before anything that needs it: each
# resource below depends on google_project_service.required, the service
# accounts and their grants included (iam.googleapis.com is off by default in
# new projects). bootstrap.sh enables the same list with gcloud before the first
# apply, so the first apply does not race the enablement either.
locals {
  required_apis = [
    "artifactregistry.googleapis.com",
    "billingbudgets.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ]
}

resource "google_project_service" "required" {
  for_each           = toset(local.required_apis)
  service            = each.value
  disable_on_destroy = false
}

moved {
  from = google_project_service.monitoring
  to   = google_project_service.required["monitoring.googleapis.com"]
}

data "google_project" "this" {}
