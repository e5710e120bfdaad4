terraform {
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.14"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.7"
    }
  }

  # State lives in a bucket you create once (see infra/README.md):
  #   terraform init -backend-config="bucket=YOUR_STATE_BUCKET"
  backend "gcs" {
    prefix = "mlops-clinical-risk"
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}
