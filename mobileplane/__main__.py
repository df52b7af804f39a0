"""``python -m mobileplane`` runs the CLI."""

from mobileplane.cli import main

main()
