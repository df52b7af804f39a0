"""The local stack: the real components mobileplane's tests and developers run against.

No container engine and no binary downloads exist here, so each component is installed from
a package registry (Debian packages, npm, the Go module proxy), cached by version under one
cache directory, and started on loopback with a health check. ``mobileplane stack up`` starts
what is not running, ``down`` stops exactly what ``up`` started, ``env`` prints how to reach
everything.
"""
