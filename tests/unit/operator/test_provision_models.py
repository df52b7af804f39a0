"""The pure parts of provisioning: names, Secret data, lifecycle rules as S3 documents."""

from __future__ import annotations

from typing import Any

import pytest

from mobileplane.operator.provision.errors import Refused
from mobileplane.operator.provision.models import (
    AdminConnection,
    DatabaseInfo,
    S3Endpoint,
    ServerInfo,
    lifecycle_configuration,
    lifecycle_summary,
    validate_bucket_name,
    validate_identifier,
    validate_names,
)
from mobileplane.operator.spec import LifecycleRule

ADMIN = AdminConnection(host="db", port=5432, user="admin", password="pw", dbname="postgres")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("shop", id="word"),
        pytest.param("mp_shop_prod", id="underscores"),
        pytest.param("_private", id="leading-underscore"),
        pytest.param("a" * 63, id="63-characters"),
        pytest.param("app2", id="digit-inside"),
    ],
)
def test_valid_identifiers_pass(name: str) -> None:
    assert validate_identifier(name, "database") == name


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="empty"),
        pytest.param("Shop", id="upper-case"),
        pytest.param("2shop", id="leading-digit"),
        pytest.param("my-shop", id="dash"),
        pytest.param("a" * 64, id="64-characters"),
        pytest.param('shop"; DROP DATABASE x; --', id="injection"),
        pytest.param("shop\n", id="trailing-newline"),
        pytest.param("café", id="non-ascii"),
    ],
)
def test_invalid_identifiers_are_refused(name: str) -> None:
    with pytest.raises(Refused, match="not allowed") as caught:
        validate_identifier(name, "database")
    assert not caught.value.transient


@pytest.mark.parametrize(
    ("database", "role", "message"),
    [
        pytest.param("postgres", "shop", "system database", id="reserved-database"),
        pytest.param("template1", "shop", "system database", id="template"),
        pytest.param("shop", "pg_shop", "reserved", id="pg-prefix-role"),
        pytest.param("shop", "admin", "the admin role 'admin' itself", id="admin-role"),
    ],
)
def test_reserved_and_admin_names_are_refused(database: str, role: str, message: str) -> None:
    with pytest.raises(Refused, match=message):
        validate_names(ADMIN, database, role)


def test_the_admins_own_database_is_refused() -> None:
    admin = AdminConnection(host="db", port=5432, user="admin", password="pw", dbname="ops")
    with pytest.raises(Refused, match="admin's own"):
        validate_names(admin, "ops", "ops_app")
    validate_names(admin, "shop", "shop")


@pytest.mark.parametrize(
    "name",
    ["media", "shop-media.prod", "a1b", "x" * 63],
)
def test_valid_bucket_names_pass(name: str) -> None:
    assert validate_bucket_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("ab", id="too-short"),
        pytest.param("x" * 64, id="too-long"),
        pytest.param("Media", id="upper-case"),
        pytest.param("media_bucket", id="underscore"),
        pytest.param("-media", id="leading-dash"),
        pytest.param("media.", id="trailing-dot"),
        pytest.param("my..media", id="double-dot"),
        pytest.param("192.168.1.10", id="ip-address"),
    ],
)
def test_invalid_bucket_names_are_refused(name: str) -> None:
    with pytest.raises(Refused, match=r"media\.bucket"):
        validate_bucket_name(name)


@pytest.mark.parametrize(
    ("rules", "document"),
    [
        pytest.param([], {"Rules": []}, id="no-rules"),
        pytest.param(
            [LifecycleRule(id="tmp", prefix="tmp/", expiration_days=7)],
            {
                "Rules": [
                    {
                        "ID": "tmp",
                        "Filter": {"Prefix": "tmp/"},
                        "Status": "Enabled",
                        "Expiration": {"Days": 7},
                    }
                ]
            },
            id="expiration-by-prefix",
        ),
        pytest.param(
            [LifecycleRule(id="uploads", abort_incomplete_multipart_upload_days=2)],
            {
                "Rules": [
                    {
                        "ID": "uploads",
                        "Filter": {"Prefix": ""},
                        "Status": "Enabled",
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2},
                    }
                ]
            },
            id="abort-uploads-whole-bucket",
        ),
        pytest.param(
            [
                LifecycleRule(
                    id="both",
                    prefix="cache/",
                    expiration_days=30,
                    abort_incomplete_multipart_upload_days=1,
                ),
                LifecycleRule(id="logs", prefix="logs/", expiration_days=365),
            ],
            {
                "Rules": [
                    {
                        "ID": "both",
                        "Filter": {"Prefix": "cache/"},
                        "Status": "Enabled",
                        "Expiration": {"Days": 30},
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                    },
                    {
                        "ID": "logs",
                        "Filter": {"Prefix": "logs/"},
                        "Status": "Enabled",
                        "Expiration": {"Days": 365},
                    },
                ]
            },
            id="two-rules-in-order",
        ),
    ],
)
def test_lifecycle_rules_become_an_s3_document(
    rules: list[LifecycleRule], document: dict[str, Any]
) -> None:
    assert lifecycle_configuration(rules) == document


def test_duplicate_rule_ids_are_refused() -> None:
    rules = [
        LifecycleRule(id="tmp", prefix="a/", expiration_days=1),
        LifecycleRule(id="tmp", prefix="b/", expiration_days=2),
    ]
    with pytest.raises(Refused, match="'tmp' appears twice"):
        lifecycle_configuration(rules)


def test_a_rule_that_does_nothing_is_refused() -> None:
    # The CRD's CEL rule forbids it; a spec parsed without the API server may still have it.
    with pytest.raises(Refused, match="does nothing"):
        lifecycle_configuration([LifecycleRule(id="idle", prefix="x/")])


@pytest.mark.parametrize(
    "returned",
    [
        pytest.param(
            {"Rules": [{"ID": "r", "Filter": {}, "Status": "Enabled", "Expiration": {"Days": 3}}]},
            id="empty-filter",
        ),
        pytest.param(
            {"Rules": [{"ID": "r", "Prefix": "", "Status": "Enabled", "Expiration": {"Days": 3}}]},
            id="legacy-top-level-prefix",
        ),
        pytest.param(
            {
                "Rules": [
                    {
                        "ID": "r",
                        "Filter": {"Prefix": ""},
                        "Status": "Enabled",
                        "Expiration": {"Days": 3},
                        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
                    }
                ],
                "ResponseMetadata": {"HTTPStatusCode": 200},
            },
            id="extra-fields",
        ),
    ],
)
def test_lifecycle_read_back_compares_equal_despite_server_spelling(
    returned: dict[str, Any],
) -> None:
    sent = lifecycle_configuration([LifecycleRule(id="r", expiration_days=3)])
    assert lifecycle_summary(returned) == lifecycle_summary(sent)


def test_lifecycle_read_back_sees_a_different_rule() -> None:
    sent = lifecycle_configuration([LifecycleRule(id="r", expiration_days=3)])
    other = lifecycle_configuration([LifecycleRule(id="r", expiration_days=4)])
    assert lifecycle_summary(other) != lifecycle_summary(sent)


def test_admin_connection_from_secret_data() -> None:
    admin = AdminConnection.from_secret_data(
        {"host": "pg.example", "port": "6432", "username": "root", "password": "pw"},
        source="Secret shop/pg-admin",
    )
    assert (admin.host, admin.port, admin.user, admin.sslmode, admin.dbname) == (
        "pg.example",
        6432,
        "root",
        "prefer",
        "postgres",
    )
    assert "pw" not in repr(admin)
    assert admin.admin == "the admin role 'root' in Secret shop/pg-admin"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"host": "h", "port": "5432", "username": "u"}, "lacks key", id="no-pw"),
        pytest.param(
            {"host": "h", "port": "x", "username": "u", "password": "p"}, "port", id="bad-port"
        ),
        pytest.param(
            {"host": "h", "port": "70000", "username": "u", "password": "p"},
            "port",
            id="port-out-of-range",
        ),
        pytest.param(
            {"host": "h", "port": "5432", "username": "u", "password": "p", "sslmode": "on"},
            "sslmode",
            id="bad-sslmode",
        ),
    ],
)
def test_invalid_admin_secret_data_is_refused(data: dict[str, str], message: str) -> None:
    with pytest.raises(Refused, match=message):
        AdminConnection.from_secret_data(data, source="Secret shop/pg-admin")


def test_s3_endpoint_from_secret_data() -> None:
    endpoint = S3Endpoint.from_secret_data(
        {"accessKeyId": "AK", "secretAccessKey": "SK"},
        endpoint_url=None,
        region="eu-west-1",
        source="Secret shop/media",
    )
    assert endpoint.server == "AWS S3 (eu-west-1)"
    assert "SK" not in repr(endpoint)
    with pytest.raises(Refused, match="secretAccessKey"):
        S3Endpoint.from_secret_data(
            {"accessKeyId": "AK"}, endpoint_url=None, region="us-east-1", source="Secret x"
        )


@pytest.mark.parametrize(
    ("superuser", "createdb", "createrole", "missing"),
    [
        pytest.param(True, False, False, (), id="superuser-needs-nothing"),
        pytest.param(False, True, True, (), id="createdb-and-createrole"),
        pytest.param(False, False, True, ("CREATEDB",), id="no-createdb"),
        pytest.param(False, False, False, ("CREATEDB", "CREATEROLE"), id="neither"),
    ],
)
def test_missing_privileges(
    superuser: bool, createdb: bool, createrole: bool, missing: tuple[str, ...]
) -> None:
    info = ServerInfo("15.4", 150004, "admin", superuser, createdb, createrole)
    assert info.missing_privileges == missing


def test_database_info_created_means_either() -> None:
    info = DatabaseInfo("d", "r", "app", "admin", False, True, "15.4")
    assert info.created
    assert not DatabaseInfo("d", "r", "app", "admin", False, False, "15.4").created
