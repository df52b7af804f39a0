"""The auth service's pure decisions: redirect matching, PKCE, refresh verdicts, session
lifetimes and caps, lockout, client registration, at_hash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mobileplane.services.auth import pkce, redirects, rules
from mobileplane.services.auth.clients import ClientConfigError, parse_clients
from mobileplane.services.auth.settings import AuthSettings
from mobileplane.services.auth.tokens import at_hash

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("registered", "requested", "match"),
    [
        ("com.example.app:/cb", "com.example.app:/cb", True),
        ("com.example.app:/cb", "com.example.app:/cb2", False),
        ("com.example.app:/cb", "COM.EXAMPLE.APP:/cb", False),  # exact, no case folding
        ("https://app.example.com/cb", "https://app.example.com/cb", True),
        ("https://app.example.com/cb", "https://app.example.com/cb/../x", False),
        ("https://app.example.com/cb", "https://app.example.com/cb?x=1", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:51004/cb", True),  # any loopback port
        ("http://127.0.0.1:8000/cb", "http://127.0.0.1:9000/cb", True),
        ("http://[::1]/cb", "http://[::1]:4000/cb", True),
        ("http://127.0.0.1/cb", "http://127.0.0.1:4000/other", False),
        ("http://127.0.0.1/cb", "http://127.0.0.2:4000/cb", False),
        ("http://127.0.0.1/cb", "http://user@127.0.0.1:4000/cb", False),
        ("http://localhost:8000/cb", "http://localhost:8001/cb", False),  # localhost: exact
        ("http://localhost:8000/cb", "http://localhost:8000/cb", True),
        ("http://127.0.0.1/cb", "http://127.0.0.1:99999/cb", False),  # not a port
    ],
)
def test_redirect_matching(registered: str, requested: str, match: bool) -> None:
    assert redirects.matches(registered, requested) is match


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("com.example.app:/oauth2redirect", "private-use"),
        ("https://app.example.com/cb", "https"),
        ("http://127.0.0.1/cb", "loopback"),
        ("http://[::1]:80/cb", "loopback"),
    ],
)
def test_redirect_kinds(uri: str, kind: str) -> None:
    assert redirects.kind(uri) == kind


@pytest.mark.parametrize(
    "uri",
    ["http://example.com/cb", "myapp:/cb", "https://app.example.com/cb#frag", "https:///cb", "::"],
)
def test_refused_redirects(uri: str) -> None:
    with pytest.raises(redirects.RedirectUriError):
        redirects.kind(uri)


def test_pkce_rfc7636_appendix_b_vector() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert pkce.s256(verifier) == challenge
    assert pkce.verify(verifier, challenge)
    assert not pkce.verify(verifier[:-1] + "F", challenge)
    assert not pkce.verify("short", pkce.s256("short"))  # below 43 characters
    assert not pkce.verify(None, challenge)


@pytest.mark.parametrize(
    ("challenge", "method", "ok"),
    [
        ("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "S256", True),
        ("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", None, False),  # defaults to plain
        ("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "plain", False),
        (None, "S256", False),
        ("tooshort", "S256", False),
    ],
)
def test_pkce_challenges(challenge: str | None, method: str | None, ok: bool) -> None:
    assert (pkce.challenge_problem(challenge, method) is None) is ok


GRACE = timedelta(seconds=30)


@pytest.mark.parametrize(
    ("token", "now", "verdict"),
    [
        (None, T0, rules.RefreshVerdict.UNKNOWN),
        (rules.PresentedRefresh(T0, True, None, False), T0, rules.RefreshVerdict.REVOKED),
        (rules.PresentedRefresh(T0, False, None, False), T0, rules.RefreshVerdict.EXPIRED),
        # the immediate parent of the live token, retried within the window: forgiven
        (
            rules.PresentedRefresh(T0 + GRACE, False, T0, True),
            T0 + timedelta(seconds=5),
            rules.RefreshVerdict.GRACE_REPLAY,
        ),
        # ... after the window: theft
        (
            rules.PresentedRefresh(T0 + GRACE, False, T0, True),
            T0 + timedelta(seconds=31),
            rules.RefreshVerdict.REUSE,
        ),
        # an older ancestor (its child was consumed too): theft, however soon
        (
            rules.PresentedRefresh(T0 + GRACE, False, T0, False),
            T0 + timedelta(seconds=1),
            rules.RefreshVerdict.REUSE,
        ),
    ],
)
def test_refresh_verdicts(
    token: rules.PresentedRefresh | None, now: datetime, verdict: rules.RefreshVerdict
) -> None:
    assert rules.judge_refresh(token, now, GRACE) is verdict


def test_no_grace_means_every_replay_is_reuse() -> None:
    token = rules.PresentedRefresh(T0 + GRACE, False, T0, True)
    assert rules.judge_refresh(token, T0, timedelta(0)) is rules.RefreshVerdict.GRACE_REPLAY
    assert rules.judge_refresh(token, T0 + timedelta(milliseconds=1), timedelta(0)) is (
        rules.RefreshVerdict.REUSE
    )


def test_grace_over_sixty_seconds_is_refused() -> None:
    with pytest.raises(ValueError, match="at most"):
        rules.judge_refresh(None, T0, timedelta(seconds=61))


LIFE = rules.SessionLifetimes(idle=timedelta(days=1), absolute=timedelta(days=7))


@pytest.mark.parametrize(
    ("created", "used", "revoked", "now", "end"),
    [
        (T0, T0, False, T0 + timedelta(hours=23), None),
        (T0, T0, False, T0 + timedelta(days=1), "idle"),
        (T0, T0 + timedelta(days=6, hours=23), False, T0 + timedelta(days=7), "absolute"),
        (T0, T0, True, T0, "revoked"),
    ],
)
def test_session_end(
    created: datetime, used: datetime, revoked: bool, now: datetime, end: str | None
) -> None:
    assert rules.session_end(created, used, revoked, now, LIFE) == end


def test_refresh_expiry_never_passes_the_absolute_lifetime() -> None:
    assert rules.refresh_expiry(T0, T0, LIFE) == T0 + timedelta(days=1)
    late = T0 + timedelta(days=6, hours=12)
    assert rules.refresh_expiry(T0, late, LIFE) == T0 + timedelta(days=7)


def test_sessions_over_the_cap_are_evicted_least_recently_used_first() -> None:
    live = [
        rules.LiveSession("b", T0 + timedelta(hours=2)),
        rules.LiveSession("a", T0),
        rules.LiveSession("c", T0 + timedelta(hours=1)),
    ]
    assert rules.sessions_to_evict(live, None) == []
    assert rules.sessions_to_evict(live, 4) == []
    assert rules.sessions_to_evict(live, 3) == ["a"]
    assert rules.sessions_to_evict(live, 1) == ["a", "c", "b"]


@pytest.mark.parametrize(
    ("before", "locked_for"),
    [
        (0, None),
        (3, None),
        (4, timedelta(seconds=60)),
        (5, timedelta(seconds=120)),
        (6, timedelta(seconds=240)),
        (40, timedelta(hours=1)),
    ],
)
def test_lockout_doubles_and_caps(before: int, locked_for: timedelta | None) -> None:
    failures, until = rules.after_failed_login(before, T0, rules.LockoutPolicy())
    assert failures == before + 1
    assert (until - T0 if until else None) == locked_for
    assert rules.is_locked(until, T0) is (until is not None)


def test_client_registration_is_checked() -> None:
    registry = parse_clients(
        '[{"client_id": "com.example.app", "redirect_uris": ["com.example.app:/cb"],'
        ' "scope": "openid sync"}]'
    )
    client = registry.get("com.example.app")
    assert client is not None
    assert client.allowed_scope(None) == ("openid", "sync")
    assert client.allowed_scope("sync") == ("sync",)
    assert client.allowed_scope("openid admin") is None
    for bad, reason in [
        ('[{"client_id": "a", "redirect_uris": ["http://evil.com/cb"]}]', "loopback"),
        ('[{"client_id": "a", "token_endpoint_auth_method": "client_secret_basic"}]', "public"),
        ('[{"client_id": "a"}, {"client_id": "a"}]', "twice"),
        ("{}", "list"),
        ("not json", "JSON"),
    ]:
        with pytest.raises(ClientConfigError, match=reason):
            parse_clients(bad)


def test_at_hash_oidc_example() -> None:
    # OIDC Core, Appendix A.3/A.4 access token and its at_hash (RS256: SHA-256).
    assert at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "RS256") == (
        "77QmUPtjPfzWtF2AnpK9RQ"
    )


TELEMETRY = frozenset({"telemetry:read", "telemetry:admin"})


@pytest.mark.parametrize(
    ("asked", "held", "granted"),
    [
        pytest.param(("openid", "sync"), frozenset(), ("openid", "sync"), id="unrestricted"),
        pytest.param(
            ("openid", "telemetry:read"), frozenset(), ("openid",), id="restricted-not-held"
        ),
        pytest.param(
            ("openid", "telemetry:read"),
            frozenset({"telemetry:read"}),
            ("openid", "telemetry:read"),
            id="restricted-held",
        ),
        pytest.param(
            ("telemetry:admin", "telemetry:read"),
            frozenset({"telemetry:read"}),
            ("telemetry:read",),
            id="only-what-is-held",
        ),
        pytest.param((), TELEMETRY, (), id="holding-is-not-asking"),
    ],
)
def test_restricted_scopes_go_only_to_users_who_hold_them(
    asked: tuple[str, ...], held: frozenset[str], granted: tuple[str, ...]
) -> None:
    assert rules.granted_scopes(asked, TELEMETRY, held) == granted


@pytest.mark.parametrize(
    ("first_account", "held"),
    [
        pytest.param(True, frozenset({"telemetry:read"}), id="first-account"),
        pytest.param(False, frozenset(), id="anyone-else"),
    ],
)
def test_the_first_account_holds_its_restricted_scopes(
    first_account: bool, held: frozenset[str]
) -> None:
    # A first-account scope that is not restricted is no privilege: it is left out.
    first = frozenset({"telemetry:read", "sync"})
    assert rules.held_scopes(TELEMETRY, first, first_account=first_account) == held


def test_a_first_account_scope_must_be_restricted() -> None:
    from pydantic import ValidationError

    stores = {"database_url": "postgresql+psycopg://db/x", "redis_url": "redis://r:6379/0"}
    settings = AuthSettings(auth_first_account_scopes="telemetry:read", **stores)
    assert settings.first_account_scopes == {"telemetry:read"}
    assert "telemetry:read" in settings.restricted_scopes
    with pytest.raises(ValidationError, match="sync not in AUTH_RESTRICTED_SCOPES"):
        AuthSettings(auth_first_account_scopes="telemetry:read sync", **stores)


STORES = {"database_url": "postgresql+psycopg://db/x", "redis_url": "redis://r:6379/0"}
GRANTS = {"release@example.com": frozenset({"telemetry:read"})}


@pytest.mark.parametrize(
    ("email", "verified", "held"),
    [
        pytest.param("release@example.com", True, frozenset({"telemetry:read"}), id="member"),
        pytest.param(" Release@Example.COM ", True, frozenset({"telemetry:read"}), id="any-case"),
        pytest.param("release@example.com", False, frozenset(), id="unverified-is-a-claim"),
        pytest.param("other@example.com", True, frozenset(), id="not-a-member"),
        pytest.param(None, True, frozenset(), id="no-email"),
    ],
)
def test_members_hold_their_scopes_once_verified(
    email: str | None, verified: bool, held: frozenset[str]
) -> None:
    assert rules.member_scopes(GRANTS, email, verified) == held


def test_held_scopes_join_first_account_and_grants_within_the_restricted() -> None:
    restricted = frozenset({"telemetry:read", "telemetry:admin"})
    granted = frozenset({"telemetry:admin", "sync"})
    assert rules.held_scopes(
        restricted, frozenset({"telemetry:read"}), first_account=True, granted=granted
    ) == frozenset({"telemetry:read", "telemetry:admin"})
    assert rules.held_scopes(
        restricted, frozenset({"telemetry:read"}), first_account=False, granted=granted
    ) == frozenset({"telemetry:admin"})


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("[1]", "must be a JSON object"),
        ("{", "is not JSON"),
        ('{"nobody": "telemetry:read"}', "is not an email address"),
        ('{"a@b.c": 3}', "must be a string or list"),
        ('{"a@b.c": "sync"}', "not in AUTH_RESTRICTED_SCOPES"),
    ],
)
def test_scope_grants_refuse_what_they_cannot_mean(raw: str, error: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=error):
        AuthSettings(auth_scope_grants=raw, **STORES)


def test_scope_grants_parse() -> None:
    settings = AuthSettings(
        **STORES,
        auth_scope_grants='{"A@B.c": "telemetry:read", "d@e.f": ["analytics:read"]}',
    )
    assert settings.scope_grants == {
        "a@b.c": frozenset({"telemetry:read"}),
        "d@e.f": frozenset({"analytics:read"}),
    }


def test_the_crd_offers_exactly_the_restricted_scopes() -> None:
    from mobileplane.operator.spec import RESTRICTED_SCOPES

    default = AuthSettings(**STORES).restricted_scopes
    assert frozenset(RESTRICTED_SCOPES) == default
