"""Token issuance by the auth service: a refresh grant (consume the token atomically, rotate
it, sign an access and an ID token, commit) against the reference of signing the same two
tokens in process with nothing else, interleaved in the same run. Also the raw ES256
validation rate, the floor of what the gateway can check per core.

Run with ``.venv/bin/python bench/bench_auth.py`` (needs the local stack).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import psycopg
from harness import summarize
from psycopg import sql

from mobileplane.operator.keys import KeySet, generate
from mobileplane.services.auth.service import SERVICE
from mobileplane.services.kit.migrate import upgrade
from mobileplane.services.kit.mount import create_service_app
from mobileplane.services.kit.settings import KitSettings
from mobileplane.services.platform import platform_migrations
from mobileplane.stack import manager

GRANTS = 100
ISSUER = "https://api.bench.example"
CLIENT = "com.example.bench"
REDIRECT = "com.example.bench:/cb"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


async def first_refresh_token(client: httpx.AsyncClient) -> str:
    page = await client.get(
        "/auth/authorize",
        params={
            "client_id": CLIENT,
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": "openid offline_access sync",
            "code_challenge": CHALLENGE,
            "code_challenge_method": "S256",
        },
    )
    fields = dict(re.findall(r'name="(request_id|csrf)" value="([^"]+)"', page.text))
    answer = await client.post(
        "/auth/authorize",
        data={**fields, "action": "register", "email": "b@example.com", "password": "x" * 12},
    )
    code = re.search(r"code=([^&]+)", answer.headers["location"])
    assert code, answer.text
    token = await client.post(
        "/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": code.group(1),
            "redirect_uri": REDIRECT,
            "client_id": CLIENT,
            "code_verifier": VERIFIER,
        },
    )
    return str(token.json()["refresh_token"])


async def run(url: str, redis_url: str, rounds: int) -> None:
    key = generate("ES256", datetime.now(UTC))
    os.environ.update(
        AUTH_ISSUER=ISSUER,
        AUTH_SIGNING_KEYS=KeySet(keys=(key,)).to_json(),
        AUTH_CLIENTS=json.dumps(
            [
                {
                    "client_id": CLIENT,
                    "redirect_uris": [REDIRECT],
                    "scope": "openid offline_access sync",
                }
            ]
        ),
    )
    settings = KitSettings(
        database_url=url.replace("postgresql://", "postgresql+psycopg://"),
        redis_url=redis_url,
        redis_prefix=f"bench-{uuid.uuid4().hex[:6]}",
        log_level="WARNING",
    )
    app = create_service_app(SERVICE, settings=settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            refresh_token = await first_refresh_token(client)

            async def grants() -> float:
                nonlocal refresh_token
                start = time.perf_counter()
                for _ in range(GRANTS):
                    r = await client.post(
                        "/auth/token",
                        data={
                            "grant_type": "refresh_token",
                            "refresh_token": refresh_token,
                            "client_id": CLIENT,
                        },
                    )
                    r.raise_for_status()
                    refresh_token = r.json()["refresh_token"]
                return time.perf_counter() - start

            now = datetime.now(UTC)
            claims = {
                "iss": ISSUER,
                "sub": "usr_1",
                "aud": ISSUER,
                "iat": int(now.timestamp()),
                "exp": int((now + timedelta(minutes=15)).timestamp()),
                "scope": "openid offline_access sync",
            }

            def signing() -> float:
                start = time.perf_counter()
                for _ in range(GRANTS):
                    for _typ in ("at+jwt", "JWT"):
                        jwt.encode(claims, key.private_pem, algorithm="ES256")
                return time.perf_counter() - start

            await grants()
            issued, signed = [], []
            for n in range(rounds):
                if n % 2:
                    issued.append(await grants())
                    signed.append(signing())
                else:
                    signed.append(signing())
                    issued.append(await grants())
            result = summarize("refresh grant / two bare ES256 signatures", signed, issued)
            print(result.line())
            print(f"  issuance: {GRANTS / result.candidate_median_s:,.0f} refresh grants/s")

    token = jwt.encode(claims, key.private_pem, algorithm="ES256", headers={"kid": key.kid})
    public = jwt.PyJWK(key.public_jwk)
    start = time.perf_counter()
    for _ in range(2000):
        jwt.decode(token, public.key, algorithms=["ES256"], audience=ISSUER, issuer=ISSUER)
    print(f"  ES256 validation (pyjwt, one core): {2000 / (time.perf_counter() - start):,.0f}/s")


def main() -> None:
    env = manager.env()
    admin = env["DATABASE_URL"]
    name = f"bench_auth_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    try:
        for ms in platform_migrations():
            upgrade(ms, url)
        asyncio.run(run(url, env["REDIS_URL"], rounds=5))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    main()
