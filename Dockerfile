# syntax=docker/dockerfile:1
# whatsapp-core as a container: built from the wheel, run as an unprivileged user.
# One image for every role; the command picks it: `wta serve` (API), `wta worker`, `wta migrate`.
# Build:  docker build --build-arg EXTRAS=postgres,redis -t whatsapp-core .
# See docs/deploy.md.

ARG PYTHON_VERSION=3.11

# --- build: the project's wheel plus a wheel of every dependency -------------------------
FROM python:${PYTHON_VERSION}-slim AS build
ARG EXTRAS=postgres,redis
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY domain/ domain/
COPY application/ application/
COPY adapters/ adapters/
COPY bootstrap/ bootstrap/
RUN python -m pip wheel --wheel-dir /wheels ".[${EXTRAS}]"

# --- runtime: installs the wheels only (no compiler, no source tree) --------------------
FROM python:${PYTHON_VERSION}-slim AS runtime
ARG EXTRAS=postgres,redis
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links /wheels "whatsapp-core[${EXTRAS}]"
RUN groupadd --system --gid 10001 wta \
    && useradd --system --uid 10001 --gid wta --create-home --home-dir /app wta
USER 10001:10001
WORKDIR /app
# Listen on every interface inside the container; production refuses insecure defaults,
# so SECRET_KEY and the TWILIO_* settings must come from the environment.
ENV API_ENVIRONMENT=production API_HOST=0.0.0.0 API_PORT=8000 LOG_FORMAT=json
EXPOSE 8000
# uvicorn and the worker both drain on SIGTERM (see docs/deploy.md for the timings).
STOPSIGNAL SIGTERM
CMD ["wta", "serve"]
