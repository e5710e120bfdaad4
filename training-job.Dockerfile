# The training job's image (infra/training_job.tf): this repository's jobs/ and
# shared/ packages and requirements.txt, the same code and pinned libraries the
# functions run. Cloud Build builds it per commit (cloudbuild.yaml).
FROM python:3.11-slim

# OpenMP pools stay at one thread: the job has 1 vCPU (see bench/training.py).
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OMP_NUM_THREADS=1

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir --disable-pip-version-check -r requirements.txt
COPY shared/ shared/
COPY jobs/ jobs/

USER 65532:65532
# The request arrives by reference: RunJob overrides `--request-id <id>`.
ENTRYPOINT ["python", "-m", "jobs.train"]
