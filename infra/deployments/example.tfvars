# One file per deployment, versioned: Cloud Build applies exactly this
# (cloudbuild.yaml: -var-file=deployments/${_DEPLOYMENT}.tfvars), so a setting
# changed here is deployed by the next push and never reverted by it.
# Copy it to deployments/<deployment>.tfvars, fill it in, commit it; no secret
# belongs here (secret values live in Secret Manager, infra/README.md step 5).
# Per commit, the build adds only code_version and training_job_image.

project_id  = "my-clinical-project"
region      = "europe-west1"
name_prefix = "mlops"
environment = "production"

# A region (the same as `region` keeps data in one place) or a multi-region
# such as eur3. It cannot change once the databases exist.
firestore_location = "europe-west1"

# Where every alert and the budget go (gcloud beta monitoring channels list).
alert_notification_channels = ["projects/my-clinical-project/notificationChannels/1234567890"]
billing_account             = "000000-000000-000000"
monthly_budget              = 500
budget_currency             = "EUR"

# Callers of the HTTP functions (never allUsers).
invoker_members = ["group:clinical-apps@example.org"]

# {} until both ingestion secrets have a version (infra/README.md step 5).
ingestion_secret_versions = {}

# Optional, shown with their defaults.
http_ingress  = "ALLOW_ALL"
kms_key_name  = ""
vpc_connector = ""
