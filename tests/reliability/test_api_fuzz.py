"""Generated requests against every REST operation the gateway describes:
no answer is a server error, documented answers match their schema, and
every refusal is a problem response.

The operations come from the gateway's own OpenAPI description, so a new
route is covered the day it is added. Bounded: a few examples per operation
here, more in `make reliability` (API_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.e2e.conftest import admin, strongroom  # noqa: F401  (one platform here)
from tests.e2e.harness import Strongroom

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "8"))
PROBLEM = {"type", "title", "status", "detail", "code"}


def test_no_operation_answers_with_a_server_error(
    strongroom: Strongroom,  # noqa: F811
    admin: httpx.Client,  # noqa: F811
) -> None:
    loaded = schemathesis.openapi.from_url(f"{strongroom.url}/openapi.json")
    loaded.config.update(base_url=strongroom.url)
    headers = {"authorization": admin.headers["authorization"]}
    failures: list[str] = []
    operations = 0
    for result in loaded.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def probe(case: Any) -> None:
            response = case.call(headers=headers)
            case.validate_response(
                response,
                checks=[checks.not_a_server_error, checks.response_schema_conformance],
            )
            if response.status_code >= 400:
                (kind, *_) = response.headers.get("content-type", [""])
                assert kind.startswith("application/problem+json"), (
                    response.status_code,
                    response.text[:300],
                )
                assert set(response.json()) >= PROBLEM, response.text[:300]

        try:
            probe()
        except (AssertionError, BaseExceptionGroup) as exc:  # reported together
            where = f"{operation.method.upper()} {operation.path}"
            failures.append(f"{where}: {exc}"[:1500])
    assert operations > 40, operations
    assert not failures, "\n\n".join(failures)
