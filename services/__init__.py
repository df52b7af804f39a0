"""The FastAPI services of the platform and their shared kit (``mobileplane.services.kit``)."""
