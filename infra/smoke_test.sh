#!/usr/bin/env bash
# What only a real project can prove, after bootstrap.sh and the first model
# (infra/README.md step 6). Run as a member of invoker_members with the
# Pub/Sub publisher role on the deployment's topics and log and Cloud Run viewer
# rights; it creates one prediction record and one training execution.
#   1. /predict without a token answers 403: nothing is public;
#   2. /predict with an identity token answers 200 with a prediction;
#   3. a drift-check request published on Pub/Sub is pushed to drift-check and
#      acknowledged (a 2xx in its request log), nothing reaches its dead letter;
#   4. a retrain request published on Pub/Sub makes retrain start an execution
#      of the training job (proving roles/run.jobsExecutorWithOverrides is
#      enough), which then succeeds.
# Usage: infra/smoke_test.sh DEPLOYMENT   (WAIT_MINUTES, default 60, bounds step 4)
set -euo pipefail

deployment="${1:?usage: infra/smoke_test.sh DEPLOYMENT}"
infra="$(cd "$(dirname "$0")" && pwd)"
vars="$infra/deployments/$deployment.tfvars"
value() { sed -n "s/^$1 *= *\"\(.*\)\".*/\1/p" "$vars"; }
project="$(value project_id)"
region="$(value region)"
name_prefix="$(value name_prefix)"
wait_minutes="${WAIT_MINUTES:-60}"
cd "$infra"
output() { terraform output -json "$1" | python3 -c "import json, sys; print(json.load(sys.stdin)$2)"; }
predict="$(output function_urls '["predict"]')"
drift_topic="$(output topics '["drift_check"]')"
retrain_topic="$(output topics '["retrain"]')"
job="$name_prefix-training"
started="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
failures=0
pass() { printf 'PASS  %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; failures=$((failures + 1)); }
query="temperature=37.2&heart_rate=88&blood_pressure=120"

# 1. no token, no answer
status=$(curl -sS -o /dev/null -w '%{http_code}' "$predict?$query")
[ "$status" = 403 ] && pass "predict without a token: 403" || fail "predict without a token answered $status, not 403"

# 2. an invoker's identity token
body=$(curl -sS -w '\n%{http_code}' -H "Authorization: Bearer $(gcloud auth print-identity-token)" "$predict?$query")
status="${body##*$'\n'}"
if [ "$status" = 200 ] && grep -q '"model_version"' <<<"$body"; then
  pass "authenticated predict: 200 with a model_version"
else
  fail "authenticated predict answered $status: ${body%$'\n'*} (a 503 'no verified model' means step 6 has not run)"
fi

# 3. a drift check through Pub/Sub
gcloud pubsub topics publish "$drift_topic" --project "$project" \
  --message '{"window_hours": 24}' --attribute source=smoke-test >/dev/null
delivered=""
for _ in $(seq 30); do
  sleep 20
  delivered=$(gcloud logging read --project "$project" --limit 1 --format 'value(httpRequest.status)' \
    "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"$name_prefix-drift-check\" AND log_id(\"run.googleapis.com/requests\") AND httpRequest.status>=200 AND httpRequest.status<300 AND timestamp>=\"$started\"")
  [ -n "$delivered" ] && break
done
[ -n "$delivered" ] && pass "drift check pushed and acknowledged (HTTP $delivered)" \
  || fail "no acknowledged drift-check delivery within 10 minutes: read the drift-check function's logs"
dead=$(gcloud pubsub subscriptions pull "$drift_topic-dead-letter-inspect" --project "$project" --limit 1 \
  --format 'value(message.messageId)' 2>/dev/null || true)
[ -z "$dead" ] && pass "nothing on the drift-check dead letter" || fail "a message waits on $drift_topic-dead-letter-inspect"

# 4. a training job execution, launched by retrain
gcloud pubsub topics publish "$retrain_topic" --project "$project" \
  --message '{"reason": "smoke-test"}' --attribute source=smoke-test >/dev/null
execution=""
for _ in $(seq 30); do
  sleep 20
  execution=$(gcloud run jobs executions list --job "$job" --region "$region" --project "$project" \
    --filter "metadata.creationTimestamp>=\"$started\"" --limit 1 --format 'value(metadata.name)')
  [ -n "$execution" ] && break
done
if [ -z "$execution" ]; then
  fail "retrain started no execution of $job within 10 minutes: read retrain's logs (a PermissionDenied names the missing permission)"
else
  pass "retrain started $execution"
  result=""
  for _ in $(seq $((wait_minutes * 2))); do
    result=$(gcloud run jobs executions describe "$execution" --region "$region" --project "$project" \
      --format 'value(status.succeededCount,status.failedCount)')
    case "$result" in 1*|*1) break ;; esac
    sleep 30
  done
  case "$result" in
    1*) pass "$execution succeeded" ;;
    *) fail "$execution did not succeed within $wait_minutes minutes (succeeded, failed: ${result:-none})" ;;
  esac
fi

echo
[ "$failures" = 0 ] && echo "smoke test passed" || { echo "$failures check(s) failed"; exit 1; }
