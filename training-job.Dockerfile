# The training job's image (infra/training_job.tf): this repository's jobs/ and
# shared/ packages and the locked dependencies the functions run (requirements.lock,
# every file checked against its hash). Cloud Build builds it per commit
# (cloudbuild.yaml); infra/bootstrap.sh builds the first one.
#
# The base image is pinned by digest: a rebuild of the same commit gets the same
# Python and Debian packages. Refresh it deliberately (infra/README.md, "Base
# image"): `docker buildx imagetools inspect python:3.11-slim` prints the
# current digest of the tag.
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

# OpenMP pools stay at one thread: the job has 1 vCPU (see bench/training.py).
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OMP_NUM_THREADS=1

WORKDIR /app
COPY requirements.lock .
RUN pip install --no-cache-dir --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
COPY shared/ shared/
COPY jobs/ jobs/

USER 65532:65532
# The one place that names the job's entry point (the Cloud Run job sets no
# command of its own; shared/training/launcher/port.py JOB_MODULE must agree,
# tests/infra checks it). The request arrives by reference: RunJob overrides
# `--request-id <id>`.
ENTRYPOINT ["python", "-m", "jobs.train"]
