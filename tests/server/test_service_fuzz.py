"""Property-based fuzzing of the service's OpenAPI document (schemathesis): whatever a client
sends, the service answers with a typed error, never a 500."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from service_support import fake_stack  # noqa: E402

from lexperience.server import ServerSettings, create_app  # noqa: E402


@schemathesis.serializer("audio/*")
def _raw_audio(ctx: object, value: object) -> bytes:  # whatever bytes the fuzzer made up
    return value if isinstance(value, bytes) else str(value).encode()


app = create_app(ServerSettings(stack=fake_stack(), turns_per_minute=100_000, burst=100_000))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_service_fail(case: schemathesis.Case) -> None:
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
