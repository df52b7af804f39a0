"""The MobileRelease release controller, imported as ``mobileplane.rollout``."""
