#!/usr/bin/env bash
# From an empty project to a deployed loop, in the one order that works:
#   1. the APIs (iam.googleapis.com and the rest are off in a new project);
#   2. the versioned Terraform state bucket;
#   3. terraform init, and a targeted apply of the training image repository
#      (the image must exist before the Cloud Run job that runs it);
#   4. the first training image, built by Cloud Build and pushed;
#   5. the whole apply, with that image by digest.
# Idempotent: run it again and every step finds its work done (an image already
# pushed for this commit is not rebuilt; Terraform plans no change).
#
# Usage: infra/bootstrap.sh DEPLOYMENT     (reads infra/deployments/DEPLOYMENT.tfvars)
# Environment: DEPLOYER (default mlops-deployer@PROJECT.iam.gserviceaccount.com, the
#              account of infra/README.md step 2, which runs the image build),
#              TF_STATE_BUCKET (default PROJECT-tfstate), AUTO_APPROVE=1 to skip
#              Terraform's confirmation prompts.
set -euo pipefail

deployment="${1:?usage: infra/bootstrap.sh DEPLOYMENT (infra/deployments/DEPLOYMENT.tfvars)}"
repository_root="$(cd "$(dirname "$0")/.." && pwd)"
infra="$repository_root/infra"
vars="$infra/deployments/$deployment.tfvars"
test -f "$vars" || { echo "no $vars: copy infra/deployments/example.tfvars and fill it in" >&2; exit 1; }

value() {  # a top-level string value of the tfvars file
  sed -n "s/^$1 *= *\"\(.*\)\".*/\1/p" "$vars"
}
project="$(value project_id)"
region="$(value region)"
name_prefix="$(value name_prefix)"
for name in project region name_prefix; do
  test -n "${!name}" || { echo "$vars does not set ${name/project/project_id}" >&2; exit 1; }
done
state_bucket="${TF_STATE_BUCKET:-$project-tfstate}"
deployer="${DEPLOYER:-mlops-deployer@$project.iam.gserviceaccount.com}"
image_repository="$region-docker.pkg.dev/$project/$name_prefix-training/training-job"
tag="bootstrap-$(git -C "$repository_root" rev-parse --short=12 HEAD)"
approve=()
[ "${AUTO_APPROVE:-0}" = 1 ] && approve=(-auto-approve)
step() { printf '\n== %s\n' "$*"; }

step "1/5 APIs (the list in infra/apis.tf)"
apis=$(sed -n '/required_apis = \[/,/\]/s/.*"\([a-z0-9.-]*\.googleapis\.com\)".*/\1/p' "$infra/apis.tf")
gcloud services enable serviceusage.googleapis.com cloudresourcemanager.googleapis.com --project "$project"
# shellcheck disable=SC2086  # one API a word
gcloud services enable $apis --project "$project"

step "2/5 state bucket gs://$state_bucket (versioned: a bad apply can be undone)"
if ! gcloud storage buckets describe "gs://$state_bucket" --project "$project" >/dev/null 2>&1; then
  gcloud storage buckets create "gs://$state_bucket" --project "$project" --location "$region" \
    --uniform-bucket-level-access --public-access-prevention
fi
gcloud storage buckets update "gs://$state_bucket" --versioning

step "3/5 terraform init, and the training image repository"
cd "$infra"
terraform init -input=false -reconfigure -backend-config="bucket=$state_bucket" -backend-config="prefix=$deployment"
# The job is not targeted: this value only satisfies the variable's validation.
placeholder="$image_repository@sha256:$(printf '0%.0s' $(seq 64))"
terraform apply -input=false "${approve[@]}" -var-file="$vars" -var="training_job_image=$placeholder" \
  -target=google_artifact_registry_repository.training

step "4/5 the first training image, $image_repository:$tag"
if ! gcloud artifacts docker images describe "$image_repository:$tag" --project "$project" >/dev/null 2>&1; then
  (cd "$repository_root" && gcloud builds submit . --project "$project" --region "$region" \
    --config infra/training-image.cloudbuild.yaml --substitutions "_IMAGE=$image_repository:$tag" \
    --service-account "projects/$project/serviceAccounts/$deployer")
fi
digest=$(gcloud artifacts docker images describe "$image_repository:$tag" --project "$project" \
  --format 'value(image_summary.digest)')
case "$digest" in sha256:*) ;; *) echo "no digest for $image_repository:$tag" >&2; exit 1 ;; esac
training_job_image="$image_repository@$digest"

step "5/5 terraform apply (log-based alert policies wait 5 minutes for their metrics)"
terraform apply -input=false "${approve[@]}" -var-file="$vars" -var="training_job_image=$training_job_image" \
  -var="code_version=$tag"
terraform output

cat <<EOF

Deployed $deployment. The training job runs $training_job_image
(a manual apply passes it back: -var training_job_image="\$(terraform output -raw training_job_image)").
Next (infra/README.md): add the ingestion secrets (step 5), train the first model (step 6),
then prove the deployment: infra/smoke_test.sh $deployment
EOF
