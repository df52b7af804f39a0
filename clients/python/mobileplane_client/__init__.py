"""mobileplane's reference client SDK (see README.md)."""

from mobileplane_client.auth import (
    FileTokenStore,
    LoginError,
    MemoryTokenStore,
    OIDCClient,
    SignedOut,
    Tokens,
    TransientAuthError,
)
from mobileplane_client.media import MediaCache
from mobileplane_client.replica import Replica
from mobileplane_client.sync import Conflict, SyncClient, SyncError

__all__ = [
    "Conflict",
    "FileTokenStore",
    "LoginError",
    "MediaCache",
    "MemoryTokenStore",
    "OIDCClient",
    "Replica",
    "SignedOut",
    "SyncClient",
    "SyncError",
    "Tokens",
    "TransientAuthError",
]
