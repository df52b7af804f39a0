# The one mobileplane image: every role runs from it through one entrypoint, `mobileplane`.
#
#   operator            mobileplane operator --liveness=http://0.0.0.0:8080/healthz
#   release controller  mobileplane release controller --liveness=http://0.0.0.0:8080/healthz
#   a service           mobileplane serve <service>      (what the operator's pods run)
#   migrations          mobileplane migrate              (the operator's migration Job)
#
# Build it anywhere with BuildKit, buildah or podman:
#
#   docker build -t ghcr.io/mobileplane/mobileplane:0.1.0 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
#
# `mobileplane image build` builds this same file without a Docker daemon or a registry:
# it makes BASE from Debian's packages (see docs/development.md, "The image").
#
# BASE is the official Python image pinned by digest. To bump it: look the digest up
# (`skopeo inspect --format '{{.Digest}}' docker://docker.io/library/python:3.11-slim-bookworm`
# or `docker buildx imagetools inspect python:3.11-slim-bookworm`), replace it below, and keep
# the Python minor (3.11) and the Debian release (bookworm) in step with BASE_PYTHON and
# DEBIAN_RELEASE in mobileplane/image/plan.py.
ARG BASE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

# -- builder: a virtual environment with mobileplane and its dependencies ----------------------
FROM ${BASE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

# `python3.11`, not `python`: the official image has it in /usr/local/bin, Debian's package in
# /usr/bin; the venv's interpreter link points at whichever the base has, and the final stage
# is built from the same base, so the link resolves there too.
RUN python3.11 -m venv /opt/mobileplane/venv
ENV PATH=/opt/mobileplane/venv/bin:$PATH

WORKDIR /src

# Dependencies first, from pyproject.toml alone: a code change keeps this layer.
# The optional secret `pip-ca` is a CA bundle for pip, for networks that reach PyPI through a
# TLS-inspecting proxy (`--secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt`); it is
# mounted for the step only and never stored in a layer.
COPY pyproject.toml ./
RUN --mount=type=secret,id=pip-ca \
    if [ -f /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/requirements.txt \
    && pip install --no-compile --only-binary=:all: -r /tmp/requirements.txt

# Then mobileplane itself. `mobileplane/operator` and friends are symlinks to the top-level
# folders (docs/development.md, "Layout"); the wheel holds real files.
COPY README.md ./
COPY mobileplane ./mobileplane
COPY operator ./operator
COPY rollout ./rollout
COPY services ./services
# Then: no installer, no tests, no caches in the image; not kubernetes.aio either (68 MB, an
# asyncio copy of the client that nothing in mobileplane imports: kopf brings its own, and a
# unit test keeps it so); bytecode made once here (the root
# filesystem is read-only at run time), with unchecked hashes: the image never changes, so
# Python need not stat each source file to validate them.
RUN --mount=type=secret,id=pip-ca \
    if [ -f /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && pip install --no-compile --no-deps . \
    && pip uninstall --yes pip setuptools wheel \
    && site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    && find "$site" -depth -type d \( -name tests -o -name test \) -exec rm -rf {} + \
    && rm -rf "$site/kubernetes/aio" \
    && find /opt/mobileplane/venv -depth -type d -name __pycache__ -exec rm -rf {} + \
    && rm -f /opt/mobileplane/venv/bin/activate* /opt/mobileplane/venv/bin/Activate.ps1 \
    && python -m compileall -q -j 0 --invalidation-mode unchecked-hash "$site"

# -- runtime: the base's Python and the venv, nothing else --------------------------------------
FROM ${BASE}

# The uid/gid the operator's pods run as (operator/render/pods.py APP_UID): numeric, so the
# kubelet can check runAsNonRoot without trusting a user name.
# No installer at run time either: the official base's pip (in /usr/local), Debian's wheels
# for ensurepip (/usr/share/python-wheels); each is absent from the other base.
RUN groupadd --system --gid 10001 mobileplane \
    && useradd --system --no-log-init --uid 10001 --gid 10001 \
        --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin mobileplane \
    && if python3.11 -m pip --version >/dev/null 2>&1; then \
        python3.11 -m pip uninstall --yes --root-user-action=ignore pip setuptools wheel; fi \
    && rm -rf /usr/share/python-wheels

COPY --from=builder /opt/mobileplane/venv /opt/mobileplane/venv

# A read-only root filesystem: nothing writes bytecode; HOME and temporary files go to /tmp,
# which the operator's pods mount as an emptyDir.
ENV PATH=/opt/mobileplane/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    HOME=/tmp

USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["mobileplane"]
CMD ["--help"]

# Last, so a new revision reuses every layer above.
ARG VERSION=0.0.0+unknown
ARG REVISION=unknown
ARG CREATED=
ARG SOURCE=https://github.com/mobileplane/mobileplane
ARG BASE
LABEL org.opencontainers.image.title="mobileplane" \
      org.opencontainers.image.description="mobileplane: the operator, the release controller and the services of a Kubernetes-native backend for mobile apps" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE}"
