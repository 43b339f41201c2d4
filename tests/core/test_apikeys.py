"""`vafa apikey …` and the API-key services the admin calls."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from vafa.cli import app
from vafa.core.auth import apikey_authenticate
from vafa.core.errors import AuthenticationError, ValidationError
from vafa.core.models import ApiKey, hash_key
from vafa.core.services import apikey_create, apikey_revoke

pytestmark = pytest.mark.django_db


def test_create_prints_the_key_once_and_stores_only_its_hash() -> None:
    result = CliRunner().invoke(app, ["apikey", "create", "shop backend"])

    assert result.exit_code == 0, result.output
    raw = result.stdout.strip()
    assert raw.startswith("vafa_") and len(raw) > 40
    stored = ApiKey.objects.get()
    assert stored.key_hash == hash_key(raw)
    assert "cannot be shown again" in result.stderr
    assert apikey_authenticate(raw_key=raw) == stored


def test_list_shows_prefixes_never_keys() -> None:
    _, raw = apikey_create(name="crm sync")

    result = CliRunner().invoke(app, ["apikey", "list"])

    assert result.exit_code == 0
    assert "crm sync" in result.stdout and raw[:13] in result.stdout
    assert raw not in result.stdout


def test_revoke_by_prefix_refuses_the_key_from_then_on() -> None:
    api_key, raw = apikey_create(name="old")

    result = CliRunner().invoke(app, ["apikey", "revoke", api_key.prefix])

    assert result.exit_code == 0, result.output
    with pytest.raises(AuthenticationError, match="revoked"):
        apikey_authenticate(raw_key=raw)


def test_revoking_twice_keeps_the_first_time_and_unknown_keys_are_reported() -> None:
    api_key, _ = apikey_create(name="k")
    first = apikey_revoke(api_key=api_key).revoked_at

    assert apikey_revoke(api_key=api_key).revoked_at == first
    result = CliRunner().invoke(app, ["apikey", "revoke", "vafa_nothere"])
    assert result.exit_code == 1
    assert "no API key" in result.stderr


def test_a_key_needs_a_name() -> None:
    with pytest.raises(ValidationError):
        apikey_create(name="  ")


def _post(raw: str, path: str, body: str = "{}") -> Any:
    from django.test import Client

    return Client().post(path, body, content_type="application/json",
                         headers={"Authorization": f"Bearer {raw}", "Idempotency-Key": "k"})


@pytest.mark.parametrize(
    ("role", "path", "allowed"),
    [
        ("owner", "/api/v1/customers", True),
        ("analyst", "/api/v1/customers", False),
        ("analyst", "/api/v1/members/c1/adjustments", False),
        ("support", "/api/v1/members/c1/adjustments", True),
        ("support", "/api/v1/members/c1/redemptions", True),
        ("support", "/api/v1/orders", False),
        ("marketer", "/api/v1/survey-invitations", True),
        ("marketer", "/api/v1/members/c1/adjustments", False),
    ],
)
def test_a_key_writes_only_what_its_role_allows(role: str, path: str, allowed: bool) -> None:
    _, raw = apikey_create(name=f"{role} key", role=role)

    response = _post(raw, path)

    if allowed:  # past the role check: the endpoint itself answers (here: a bad body)
        assert response.status_code != 403, response.content
    else:
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"
        assert role in response.json()["error"]["message"]


def test_every_role_reads() -> None:
    _, raw = apikey_create(name="read only", role="analyst")
    from django.test import Client

    response = Client().get("/api/v1/loyalty/liability", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 200, response.content


def test_a_key_with_an_unknown_role_is_refused_and_the_cli_sets_the_role() -> None:
    with pytest.raises(ValidationError, match="unknown role"):
        apikey_create(name="x", role="intern")
    result = CliRunner().invoke(app, ["apikey", "create", "support desk", "--role", "support"])
    assert result.exit_code == 0, result.output
    assert ApiKey.objects.get(name="support desk").role == "support"
