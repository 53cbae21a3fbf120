"""Schemathesis against the published OpenAPI schema: generated requests to every operation, in process,
as an admin (who reaches every code path). No request may end in a server error, and every successful
response must match the schema. Bounded and derandomised, so a run is quick and repeatable; API_FUZZ_EXAMPLES=200 digs deeper."""

from __future__ import annotations

import os

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from investigator.wsgi import application

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = application


@pytest.fixture
def admin_token(cast, tmp_path, settings):  # noqa: ANN001, ANN201 - pytest fixtures
    from rest_framework.authtoken.models import Token

    from tests.workbench import build_investigation

    settings.MEDIA_ROOT = str(tmp_path / "media")
    build_investigation()
    return Token.objects.create(user=cast["admin"]).key


@pytest.fixture(autouse=True)
def _keep_the_test_connection():  # noqa: ANN202
    """The application is called in process: like Django's test client, keep the request signals from closing
    the test's database connection (and its transaction) at the end of each request."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=int(os.environ.get("API_FUZZ_EXAMPLES", "8")), deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_no_server_errors(case, admin_token):  # noqa: ANN001 - schemathesis's case
    case.call_and_validate(headers={"Authorization": f"Token {admin_token}"},
                           checks=[not_a_server_error, response_schema_conformance])
