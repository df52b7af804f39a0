"""Configuration, its hash, the OIDC clients and the gateway's route table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from render_fixtures import (
    KEYSET,
    MINIMAL,
    SYNC_KEYS,
    example_input,
    find,
    make_input,
    with_changes,
)

from mobileplane.operator.keys import generate, rotate
from mobileplane.operator.render import (
    CONFIG_HASH_ANNOTATION,
    RenderInput,
    gateway_url,
    render,
)
from mobileplane.operator.render.config import config_entries, consumed_config, oidc_clients
from mobileplane.operator.render.routes import IDEMPOTENT_METHODS, route_table
from mobileplane.operator.spec import SERVICE_NAMES, UNSHIPPED_SERVICES, MobilePlatformSpec

MEDIA = {"bucket": "hello-media", "credentialsSecretRef": {"name": "hello-media"}}
PUSH = {
    "apns": {
        "keySecretRef": {"name": "apns", "key": "key.p8"},
        "keyId": "ABC123DEFG",
        "teamId": "ABCDE12345",
        "topic": "com.example.hello",
    }
}
EMAIL = {
    "from": "Hello <no-reply@hello.example.com>",
    "smtp": {"host": "smtp.example.com", "credentialsSecretRef": {"name": "relay"}},
}

#: Notifications and analytics are not shipped yet (the CRD refuses to enable them), but the
#: renderer handles them for the version that does: the hash tests turn them on.
UNSHIPPED_ON = {f"services.{s}.enabled": True for s in UNSHIPPED_SERVICES}
BASE = with_changes(MINIMAL, {"media": MEDIA, "push": PUSH, **UNSHIPPED_ON})


def _hashes(inp: RenderInput) -> dict[str, str]:
    return {
        o["metadata"]["labels"]["app.kubernetes.io/component"]: o["spec"]["template"]["metadata"][
            "annotations"
        ][CONFIG_HASH_ANNOTATION]
        for o in render(inp)
        if o["kind"] == "Deployment" and o["metadata"]["name"] != "hello-redis"
    }


def _changed(before: RenderInput, after: RenderInput) -> set[str]:
    old, new = _hashes(before), _hashes(after)
    return {s for s in new if old.get(s) != new[s]}


@pytest.mark.parametrize(
    ("changes", "rolled"),
    [
        pytest.param({"auth.accessTokenTTLSeconds": 300}, {"auth"}, id="token-ttl"),
        pytest.param({"auth.signingAlgorithm": "RS256"}, {"auth", "gateway"}, id="algorithm"),
        pytest.param({"app.redirectURIs": ["https://h.example.com/cb"]}, {"auth"}, id="redirects"),
        pytest.param({"telemetry.tracesSampleRate": 0.5}, {"telemetry"}, id="traces"),
        pytest.param({"analytics.retentionDays": 30}, {"analytics"}, id="analytics-retention"),
        pytest.param(
            {"media.region": "eu-west-1"}, {"content", "profiles", "telemetry"}, id="media-region"
        ),
        pytest.param({"push.apns.environment": "sandbox"}, {"notifications"}, id="apns"),
        pytest.param({"backups.enabled": True}, set(), id="backups-roll-no-service"),
        pytest.param({"auth.email": EMAIL}, {"auth"}, id="email-relay"),
        pytest.param({"services.auth.replicas": 3}, set(), id="replicas-are-not-config"),
        pytest.param({"services.auth.image": "other:1"}, set(), id="image-rolls-by-itself"),
        # The public URL: auth's issuer, telemetry's DSNs, the gateway's routes.
        pytest.param(
            {"gateway.host": "api.example.com"}, {"auth", "gateway", "telemetry"}, id="public-url"
        ),
        # A service turned off: the gateway's routes, and auth's clients (its scopes).
        pytest.param({"services.sync.enabled": False}, {"gateway", "auth"}, id="topology"),
        pytest.param({"services.appconfig.enabled": False}, {"gateway"}, id="topology-quiet"),
    ],
)
def test_a_change_rolls_exactly_the_services_that_read_it(
    changes: dict[str, Any], rolled: set[str]
) -> None:
    assert _changed(make_input(BASE), make_input(with_changes(BASE, changes))) == rolled


@pytest.mark.parametrize(
    ("secret", "rolled"),
    [
        pytest.param("hello-database", set(SERVICE_NAMES), id="database"),
        pytest.param("hello-signing-keys", {"auth"}, id="signing-keys"),
        pytest.param("hello-sync-keys", {"sync"}, id="sync-keys"),
        pytest.param("hello-media", {"content", "profiles", "telemetry"}, id="media"),
        pytest.param("apns", {"notifications"}, id="apns"),
        pytest.param("unrelated", set(), id="unreferenced"),
    ],
)
def test_a_new_secret_version_rolls_its_readers(secret: str, rolled: set[str]) -> None:
    before = make_input(BASE, secret_versions={secret: "1"})
    after = make_input(BASE, secret_versions={secret: "2"})
    assert _changed(before, after) == rolled


def test_a_key_rotation_rolls_the_auth_service() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    rotated = rotate(KEYSET, generate("ES256", now), "2026-03", now)
    assert _changed(make_input(BASE), make_input(BASE, keyset=rotated)) == {"auth"}


def test_sync_keys_rotated_by_hand_roll_the_sync_service() -> None:
    rotated = f"{'n' * 43},{SYNC_KEYS}"
    assert _changed(make_input(BASE), make_input(BASE, sync_keys=rotated)) == {"sync"}


def test_the_hash_does_not_contain_secret_values() -> None:
    inp = make_input(BASE)
    text = repr(_hashes(inp))
    assert inp.generated.db_password not in text
    assert inp.generated.sync_checkpoint_keys not in text
    assert all(len(h) == 64 for h in _hashes(inp).values())


def test_services_read_shared_keys_and_their_own() -> None:
    inp = make_input(BASE)
    auth, profiles = consumed_config(inp, "auth"), consumed_config(inp, "profiles")
    assert (
        "AUTH_ACCESS_TOKEN_TTL_SECONDS" in auth and "AUTH_ACCESS_TOKEN_TTL_SECONDS" not in profiles
    )
    assert "REDIS_PREFIX" in auth and "REDIS_PREFIX" in profiles
    assert consumed_config(inp, "content")["CONTENT_MEDIA_BUCKET"] == "hello-media"


# -- OIDC clients ---------------------------------------------------------------------------


def _clients(app: dict[str, Any]) -> dict[str, dict[str, Any]]:
    spec = MobilePlatformSpec.model_validate({"app": {"displayName": "X", **app}})
    return {c["client_id"]: c for c in oidc_clients(spec, ["profiles"])}


@pytest.mark.parametrize(
    ("app", "expected"),
    [
        pytest.param(
            {"ios": {"bundleIds": ["com.a.app"]}, "redirectURIs": ["com.a.app:/cb"]},
            {"com.a.app": (["ios"], ["com.a.app:/cb"])},
            id="one-ios-app",
        ),
        pytest.param(
            {
                "ios": {"bundleIds": ["com.a.app", "com.a.app.widget"]},
                "android": {"packageNames": ["com.a.app"]},
                "redirectURIs": ["com.a.app:/cb", "https://a.example.com/cb"],
            },
            {
                "com.a.app": (["android", "ios"], ["com.a.app:/cb", "https://a.example.com/cb"]),
                "com.a.app.widget": (["ios"], ["https://a.example.com/cb"]),
            },
            id="shared-id-and-own-scheme",
        ),
        pytest.param(
            {
                "android": {"packageNames": ["com.b.app", "com.b.lite"]},
                "redirectURIs": ["com.b.shared:/cb", "http://127.0.0.1/cb"],
            },
            {
                "com.b.app": (["android"], ["com.b.shared:/cb", "http://127.0.0.1/cb"]),
                "com.b.lite": (["android"], ["com.b.shared:/cb", "http://127.0.0.1/cb"]),
            },
            id="unclaimed-scheme-goes-to-all",
        ),
    ],
)
def test_oidc_clients_come_from_the_app_identity(
    app: dict[str, Any], expected: dict[str, tuple[list[str], list[str]]]
) -> None:
    clients = _clients(app)
    assert {cid: (c["platforms"], c["redirect_uris"]) for cid, c in clients.items()} == expected
    for client in clients.values():
        assert client["token_endpoint_auth_method"] == "none"  # public: native apps
        assert client["require_pkce"] is True
        assert client["grant_types"] == ["authorization_code", "refresh_token"]
        assert client["scope"] == "openid offline_access profiles"


# -- gateway URL and route table ------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "namespace", "url"),
    [
        pytest.param(None, "apps", "http://hello-gateway.apps.svc:8080", id="in-cluster"),
        pytest.param("api.example.com", "apps", "https://api.example.com", id="public-host"),
        pytest.param(None, "team-a", "http://hello-gateway.team-a.svc:8080", id="namespace"),
    ],
)
def test_gateway_url(host: str | None, namespace: str, url: str) -> None:
    inp = make_input(with_changes(MINIMAL, {"gateway.host": host}), namespace=namespace)
    assert gateway_url(inp) == url


def test_route_table_of_the_complete_example() -> None:
    table = route_table(example_input("complete"))
    assert table["issuer"] == table["audience"] == "https://api.shop.example.com"
    assert table["jwksURL"] == "http://shop-auth.apps.svc:8080/.well-known/jwks.json"
    routes = {r["pathPrefix"]: r for r in table["routes"]}
    assert list(routes) == [
        "/.well-known/",
        "/auth/",
        "/profiles/",
        "/content/",
        "/sync/",
        "/telemetry/",  # notifications and analytics are not shipped yet
        "/telemetry/projects/",
        "/appconfig/",
    ]
    modes = {p: (r["auth"]["mode"], r["auth"].get("scopes")) for p, r in routes.items()}
    assert modes == {
        "/.well-known/": ("public", None),
        "/auth/": ("public", None),
        "/profiles/": ("jwt", ["profiles"]),
        "/content/": ("jwt", ["content"]),
        "/sync/": ("jwt", ["sync"]),
        "/telemetry/": ("public", None),  # Sentry DSN, checked by the service
        "/telemetry/projects/": ("jwt", []),  # a token; the service checks its scope
        "/appconfig/": ("public", None),  # read before sign-in; writes only in-cluster
    }
    for prefix, route in routes.items():
        service = route["service"]
        assert route["upstream"] == f"http://shop-{service}.apps.svc:8080", prefix
        assert route["timeoutSeconds"] > 0 and route["maxBodyBytes"] > 0
        assert set(route["retries"]["methods"]) <= set(IDEMPOTENT_METHODS)
        assert "POST" not in route["retries"]["methods"]
        assert "PATCH" not in route["retries"]["methods"]


@pytest.mark.parametrize(
    ("disabled", "prefixes"),
    [
        pytest.param([], 13, id="all-shipped"),
        pytest.param(["auth"], 11, id="no-auth-no-discovery"),
        pytest.param(["profiles", "content", "sync"], 10, id="three-off"),
    ],
)
def test_route_table_lists_only_enabled_services(disabled: list[str], prefixes: int) -> None:
    changes = {f"services.{s}.enabled": False for s in disabled}
    table = route_table(make_input(with_changes(MINIMAL, changes)))
    assert len(table["routes"]) == prefixes
    assert not {r["service"] for r in table["routes"]} & set(disabled)
    assert ("jwksURL" in table) == ("auth" not in disabled)


def test_algorithms_include_every_published_key() -> None:
    rs = with_changes(MINIMAL, {"auth.signingAlgorithm": "RS256"})
    assert route_table(make_input(rs))["algorithms"] == ["ES256", "RS256"]
    assert route_table(make_input(MINIMAL))["algorithms"] == ["ES256"]


def test_the_gateway_mounts_its_routes() -> None:
    objects = render(make_input(MINIMAL))
    deployment = find(objects, "Deployment", "hello-gateway")
    assert deployment is not None
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {"name": "routes", "configMap": {"name": "hello-gateway-routes"}} in volumes


@pytest.mark.parametrize("example", ["minimal", "complete"])
def test_config_keys_are_unique(example: str) -> None:
    keys = [e.key for e in config_entries(example_input(example))]
    assert len(keys) == len(set(keys))


def test_the_sync_data_model_reaches_the_sync_service_and_parses() -> None:
    from mobileplane.services.sync.settings import SyncSettings

    model = {"version": 1, "tables": {"todos": {"columns": {"title": {"type": "text"}}}}}
    inp = make_input(with_changes(MINIMAL, {"sync": {"dataModel": model}}))
    config = consumed_config(inp, "sync")
    settings = SyncSettings(
        database_url="postgresql://u:p4ss@db/x",
        redis_url="redis://r:6379/0",
        sync_schema=config["SYNC_SCHEMA"],
        sync_checkpoint_keys=inp.generated.sync_checkpoint_keys,
    )
    assert set(settings.declared_schema().tables) == {"todos"}
    assert "SYNC_SCHEMA" not in consumed_config(inp, "content")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"tables": {}}, "tables must be a non-empty object"),
        ({"tables": {"t": {"columns": {"n": {"type": "text", "resolver": "counter"}}}}}, "integer"),
        ({"tables": {"t": {"bucket": "team", "columns": {"n": {"type": "text"}}}}}, "bucket"),
    ],
)
def test_an_invalid_sync_data_model_is_refused_with_where(
    model: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=f"invalid sync data model: .*{message}"):
        MobilePlatformSpec.model_validate(with_changes(MINIMAL, {"sync": {"dataModel": model}}))


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        pytest.param(None, {"AUTH_EMAIL_SENDER": "log"}, id="unset-logs-only"),
        pytest.param(
            EMAIL,
            {
                "AUTH_EMAIL_SENDER": "smtp",
                "AUTH_EMAIL_FROM": "Hello <no-reply@hello.example.com>",
                "AUTH_SMTP_HOST": "smtp.example.com",
                "AUTH_SMTP_PORT": "587",
                "AUTH_SMTP_SECURITY": "starttls",
                "AUTH_REQUIRE_VERIFIED_EMAIL": "false",
            },
            id="relay",
        ),
    ],
)
def test_the_auth_service_gets_its_mail_relay(
    monkeypatch: pytest.MonkeyPatch, email: dict[str, Any] | None, expected: dict[str, str]
) -> None:
    """The rendered settings are the ones the auth service reads, and they load."""
    from mobileplane.services.auth.settings import AuthSettings

    inp = make_input(with_changes(MINIMAL, {"auth.email": email}))
    config = consumed_config(inp, "auth")
    assert {k: v for k, v in config.items() if "EMAIL" in k or "SMTP" in k} == expected
    deployment = find(render(inp), "Deployment", "hello-auth")
    assert deployment is not None
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    if email:
        assert env["AUTH_SMTP_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "relay",
            "key": "password",
        }
    else:
        assert "AUTH_SMTP_PASSWORD" not in env
    for key, value in {**config, "DATABASE_URL": "postgresql+psycopg://u:p@h/d"}.items():
        monkeypatch.setenv(key, value)
    loaded = AuthSettings()
    assert loaded.auth_email_sender == expected["AUTH_EMAIL_SENDER"]
    assert loaded.auth_smtp_host == expected.get("AUTH_SMTP_HOST")
