# Model artifacts, baselines, experiment copies and drift reports.
resource "google_storage_bucket" "artifacts" {
  #checkov:skip=CKV_GCP_62:Access is recorded by Data Access audit logs (audit.tf), which Google recommends over usage logs and which name the caller.
  name                        = "${var.project_id}-${var.name_prefix}-artifacts"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_days
    }
    action {
      type = "Delete"
    }
  }

  dynamic "encryption" {
    for_each = var.kms_key_name == "" ? [] : [var.kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }

  depends_on = [google_project_service.required, google_kms_crypto_key_iam_member.service_agents]
}

# Zipped function source, one object per content hash. A new hash replaces
# the object, so superseded archives become noncurrent versions; only those
# expire -- the live archive stays, however old.
resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Access is recorded by Data Access audit logs (audit.tf), which Google recommends over usage logs and which name the caller.
  name                        = "${var.project_id}-${var.name_prefix}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
    }
    action {
      type = "Delete"
    }
  }

  dynamic "encryption" {
    for_each = var.kms_key_name == "" ? [] : [var.kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }

  depends_on = [google_project_service.required, google_kms_crypto_key_iam_member.service_agents]
}

# Only what the functions import goes into the zip: an allow-list, so local
# leftovers (.venv*, __pycache__, tools/, tests/, bench/, .local, .build) never
# reach it and its hash depends on the source alone (the archive provider
# writes entries sorted, with a fixed timestamp).
locals {
  source_root = abspath("${path.module}/..")
  source_files = sort(setunion(
    ["main.py", "requirements.txt"],
    fileset(local.source_root, "functions/*.py"),
    fileset(local.source_root, "shared/**/*.py"),
  ))
}

data "archive_file" "source" {
  type        = "zip"
  output_path = "${path.module}/.build/source.zip"

  # Cloud Functions installs the archive's requirements.txt: it gets
  # requirements.lock, every package pinned with its hashes (make lock).
  dynamic "source" {
    for_each = local.source_files
    content {
      filename = source.value
      content  = file("${local.source_root}/${source.value == "requirements.txt" ? "requirements.lock" : source.value}")
    }
  }
}

resource "google_storage_bucket_object" "source" {
  name   = "source-${data.archive_file.source.output_md5}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.source.output_path
}
