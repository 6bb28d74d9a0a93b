# checkpoint-streams worker image (also runs `checkpoint-streams topics` and the load
# generator). docker-compose.yml builds it; the same CHECKPOINT_* variables as locally.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first (cached while only the code changes): an editable install of the
# project needs its metadata and package directory, so install with a stub package,
# then copy the real sources over it. (README.m[d]: copied when present, the package
# metadata's long description; a pattern so the build never fails without it.)
COPY pyproject.toml README.m[d] ./
RUN mkdir -p streams && touch streams/__init__.py && pip install -e '.[rocksdb]' && rm -rf streams

COPY streams ./streams
COPY schemas ./schemas
COPY tests/scenarios ./tests/scenarios
RUN pip install --no-deps -e . && checkpoint-streams --version

# Not root; table data (RocksDB, Faust's files) under a writable directory.
RUN useradd --system --uid 10001 --home-dir /var/lib/checkpoint-streams --create-home checkpoint
USER checkpoint

# listen on the container's interfaces (Prometheus and the other workers reach it there);
# the address advertised to the other workers defaults to the container's hostname.
# RocksDB, the production store, on the data volume.
ENV CHECKPOINT_WEB_BIND=0.0.0.0 \
    CHECKPOINT_WEB_PORT=6066 \
    CHECKPOINT_STORE=rocksdb:// \
    CHECKPOINT_DATA_DIR=/var/lib/checkpoint-streams
VOLUME /var/lib/checkpoint-streams

EXPOSE 6066
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=6 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:6066/ready', timeout=3).status != 200)"]

CMD ["checkpoint-streams", "worker"]
