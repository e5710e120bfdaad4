"""schemathesis against make run's server, driven by the published openapi.yaml:
generated requests (valid and invalid) get no 5xx, and every answer matches
the documented status codes, content type and response schema."""

import pytest

from tests.conftest import ROOT, require_module
from tests.e2e.server import LocalServer

schemathesis = require_module("schemathesis")  # skipped without it locally; with CI=true, an error
from hypothesis import HealthCheck, settings  # noqa: E402

# A batch over MAX_BATCH_SIZE is refused with 413, as the contract says: count it as a rejection.
# A history cursor is opaque (only ones the service issued are valid), which a schema
# cannot express: a random string's 400 there is correct, not a rejected valid request.
CONFIG = schemathesis.config.SchemathesisConfig.from_dict({
    "checks": {"negative_data_rejection": {"expected-statuses": [400, 404, 405, 413, 414, 415]}},
    "operations": [{"include-path": "/predictions-history",
                    "checks": {"positive_data_acceptance": {"enabled": False}}}],
})
schema = schemathesis.openapi.from_path(ROOT / "openapi.yaml", config=CONFIG)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = LocalServer({"LOCAL_DATA_DIR": str(tmp_path_factory.mktemp("schemathesis")),
                           "TRAINING_ROWS": "3000"}).start()
    yield running
    running.stop()


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_server_honours_its_openapi_description(case, server):
    case.call_and_validate(base_url=server.url)
