"""The mobileplane container image, built here without a Docker daemon or a registry.

``mobileplane image build`` builds the repository's ``Dockerfile`` with buildah on a base made
from Debian's packages (:mod:`mobileplane.image.plan` decides, :mod:`mobileplane.image.builder`
runs the tools); :func:`mobileplane.image.builder.current` tells where the last archive is.
"""
