# cdsrules API image: python:3.11-slim, non-root, healthcheck, gunicorn + uvicorn workers.
#
# Build stage: durable-rules is an sdist with a C extension, so it needs gcc; the runtime stage
# does not ship a compiler. The project is installed editable at /app because the service reads
# its rule pack (rules/) and migrations (alembic/) from the source tree; both stages use the same
# paths, so the venv copied into the runtime stage still points at /app. No extras: the harness's
# matplotlib, Dask and rich (cdsrules[harness]) are for offline cohort runs, not the service.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev make \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY engine ./engine
COPY schemas ./schemas
COPY rules ./rules
COPY alembic ./alembic
RUN /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip install -e /app \
 && /opt/venv/bin/cdsrules lint rules

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PORT=8000 \
    CDSRULES_ENVIRONMENT=production
RUN groupadd --system --gid 10001 cdsrules \
 && useradd --system --uid 10001 --gid cdsrules --home-dir /app --no-create-home --shell /usr/sbin/nologin cdsrules
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
# ./var holds the SQLite audit log when no DATABASE_URL is given; everything else stays root-owned
RUN mkdir -p /app/var && chown cdsrules:cdsrules /app/var
WORKDIR /app
USER cdsrules:cdsrules
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD python -c "import os,sys,urllib.request; u='http://127.0.0.1:%s/healthz' % os.environ.get('PORT','8000'); sys.exit(0 if urllib.request.urlopen(u, timeout=2).status == 200 else 1)"
# one process per core is a good start; each worker compiles its own rules (see docs/deployment.md)
CMD ["cdsrules", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
