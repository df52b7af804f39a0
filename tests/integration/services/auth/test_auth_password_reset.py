"""A forgotten password, as a user lives it: the link by email, the form, a new password,
every device signed out — and the ways it must not work (an unknown address tells nothing,
a link works once and for an hour only, a verification link is not a reset link)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
from support.oidc import browser_login
from support.uvicorn_server import ServerHandle
from test_auth_accounts import _authorize_url
from test_auth_login_flow import PASSWORD, refresh, sign_in

from mobileplane.services.auth.mail import Email, LoggingSender

NEW_PASSWORD = "a brand new passphrase"


def outbox(server: ServerHandle) -> list[Email]:
    sender = server.app.state.auth.sender
    assert isinstance(sender, LoggingSender)
    return sender.outbox


def reset_mails(server: ServerHandle, to: str) -> list[Email]:
    return [m for m in outbox(server) if m.to == to and "/auth/password/reset" in (m.link or "")]


def forgot(server: ServerHandle, email: str) -> httpx.Response:
    return httpx.post(f"{server.url}/auth/password/forgot", data={"email": email})


def wait_for_mail(server: ServerHandle, to: str, count: int = 1) -> Email:
    """The mail goes out after the response (a background task): wait for it briefly."""
    deadline = time.monotonic() + 5
    while len(reset_mails(server, to)) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    mails = reset_mails(server, to)
    assert len(mails) == count, mails
    return mails[-1]


def token_of(mail: Email) -> str:
    assert mail.link
    return parse_qs(urlsplit(mail.link).query)["token"][0]


def reset(server: ServerHandle, token: str, password: str, confirm: str | None = None) -> Any:
    return httpx.post(
        f"{server.url}/auth/password/reset",
        data={"token": token, "password": password, "confirm": confirm or password},
    )


def test_a_reset_link_sets_a_new_password_and_signs_every_device_out(auth_server: Any) -> None:
    server = auth_server()
    phone = sign_in(server, "forgetful@example.com", extra={"device_id": "phone"})
    tablet = sign_in(server, "forgetful@example.com", register=False, extra={"device_id": "tab"})

    asked = forgot(server, "Forgetful@example.com")
    assert asked.status_code == 200 and "Check your email" in asked.text
    mail = wait_for_mail(server, "forgetful@example.com")
    token = token_of(mail)
    # Opening the link (a mail scanner may) does not spend it.
    for _ in range(2):
        form = httpx.get(mail.link or "")
        assert form.status_code == 200 and f'value="{token}"' in form.text

    assert reset(server, token, "short").status_code == 422
    assert reset(server, token, NEW_PASSWORD, "something else").status_code == 422
    done = reset(server, token, NEW_PASSWORD)
    assert done.status_code == 200 and "Password changed" in done.text

    for device in (phone, tablet):
        assert refresh(server, device["refresh_token"]).status_code == 400
    old = browser_login(_authorize_url(server), "forgetful@example.com", PASSWORD)
    assert old.status_code == 401
    new = browser_login(_authorize_url(server), "forgetful@example.com", NEW_PASSWORD)
    assert new.status_code == 303
    again = reset(server, token, "yet another passphrase")
    assert again.status_code == 400 and "Link expired" in again.text


def test_an_unknown_address_gets_the_same_answer_and_no_mail(auth_server: Any) -> None:
    server = auth_server()
    sign_in(server, "known@example.com")
    known, unknown = forgot(server, "known@example.com"), forgot(server, "nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace("known@", "X@") == unknown.text.replace("nobody@", "X@")
    wait_for_mail(server, "known@example.com")
    assert reset_mails(server, "nobody@example.com") == []
    assert forgot(server, "not an address").status_code == 422


def test_one_mail_a_minute_and_the_latest_reset_voids_the_others(auth_server: Any) -> None:
    server = auth_server()
    sign_in(server, "twice@example.com")
    forgot(server, "twice@example.com")
    first = token_of(wait_for_mail(server, "twice@example.com"))
    forgot(server, "twice@example.com")  # within the minute: answered, not mailed
    time.sleep(0.3)
    assert len(reset_mails(server, "twice@example.com")) == 1
    assert reset(server, first, NEW_PASSWORD).status_code == 200


def test_expired_and_verification_links_are_not_reset_links(
    auth_server: Any, database_url: str
) -> None:
    server = auth_server()
    sign_in(server, "expired@example.com")
    verification = next(m for m in outbox(server) if m.to == "expired@example.com")
    verify_token = token_of(verification)
    assert httpx.get(f"{server.url}/auth/password/reset?token={verify_token}").status_code == 400
    assert reset(server, verify_token, NEW_PASSWORD).status_code == 400

    forgot(server, "expired@example.com")
    token = token_of(wait_for_mail(server, "expired@example.com"))
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        conn.execute(
            "UPDATE auth_email_tokens SET expires_at = now() - interval '1 second' "
            "WHERE purpose = 'reset'"
        )
    assert httpx.get(f"{server.url}/auth/password/reset?token={token}").status_code == 400
    assert reset(server, token, NEW_PASSWORD).status_code == 400
    assert browser_login(_authorize_url(server), "expired@example.com", PASSWORD).status_code == 303


def test_the_login_page_links_to_the_forgotten_password_form(auth_server: Any) -> None:
    server = auth_server()
    page = httpx.get(_authorize_url(server))
    assert 'href="password/forgot"' in page.text
    form = httpx.get(f"{server.url}/auth/password/forgot")
    assert form.status_code == 200 and 'name="email"' in form.text
    assert form.headers["x-frame-options"] == "DENY"
