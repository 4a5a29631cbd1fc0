"""Schemathesis against the app's own OpenAPI schema: whatever it generates, valid or not, never a 5xx.

Runs in-process through the ASGI transport. No keys are configured, so write routes answer 403 and
the index is never changed; the rate limit is off so the fuzzer is not slowed down by 429s.
Hypothesis is driven directly: schemathesis' pytest plugin does not run on this pytest.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from hoidap.service.app import create_app
from hoidap.service.settings import Settings

FUZZ = Settings(rate_limit=None, reload_interval=0)
OPERATIONS = [(method.upper(), path)  # from the schema alone: building an app loads nothing
              for path, item in create_app(Path("unused"), settings=FUZZ).openapi()["paths"].items()
              for method in item]


@pytest.fixture(scope="module")
def api_schema(corpus_data_dir: Path):
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(corpus_data_dir, settings=FUZZ))


@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_server_error(api_schema, method: str, path: str):
    operation = api_schema[path][method]

    @given(case=st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                          operation.as_strategy(GenerationMode.NEGATIVE)))
    @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def no_server_error(case) -> None:
        case.call_and_validate(checks=[not_a_server_error])

    no_server_error()
