"""mobileplane: a Kubernetes-native backend platform for mobile apps.

The distribution holds the control plane (``mobileplane.operator``, ``mobileplane.rollout``),
the services (``mobileplane.services``), the developer CLI (``mobileplane.cli``) and the local
stack manager (``mobileplane.stack``) that runs the real components the tests need.
"""

__version__ = "0.1.0"
