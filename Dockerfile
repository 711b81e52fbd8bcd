# syntax=docker/dockerfile:1
# Airflow 3.3 with this project installed: the image docker-compose.yaml runs (and a starting
# point for a production image). Build: docker build -t airflow-hyperband:local .
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11

# Stage 1: build the project's wheel (hb_core, hb_airflow, the hb-tune CLI, the plugin entry point, and
# hb_emulator, which the `emulated` compose profile runs against its own moto, so without the emulator extra).
FROM python:${PYTHON_VERSION}-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY hb_core/ hb_core/
COPY hb_emulator/ hb_emulator/
COPY plugins/hb_airflow/ plugins/hb_airflow/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Stage 2: the official Airflow image plus the wheel.
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}
ARG AIRFLOW_VERSION
USER root
# socat publishes the SageMaker emulator's loopback-only port in the `emulated` compose profile.
RUN apt-get update \
    && apt-get install -y --no-install-recommends socat \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
USER airflow
COPY --from=wheel --chown=airflow:0 /wheels/ /tmp/wheels/
# Airflow is pinned to the image's own version, so pip never moves it while resolving the project.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" /tmp/wheels/airflow_hyperband-*.whl \
    && rm -rf /tmp/wheels
# Trial processes (local backend, emulator) share the container's cores: one BLAS thread each.
ENV OPENBLAS_NUM_THREADS=1 \
    OMP_NUM_THREADS=1
