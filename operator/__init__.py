"""The MobilePlatform operator (kopf), imported as ``mobileplane.operator``.

This folder is never importable as a top-level ``operator`` package: that name belongs to
Python's standard library. It reaches the import system only through the
``mobileplane/operator`` link.
"""
