# One image for every long-running part: workers, beat, the poller, Flower, and (for the
# compose `local` profile) the Genesys simulator and `dlq-replay setup`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system app \
    && useradd --system --gid app --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app

# Install the project (no dev extra) from a throwaway source tree.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY dlq ./dlq
COPY tasks ./tasks
COPY ingest ./ingest
COPY cli ./cli
COPY devstack ./devstack
COPY celeryconfig.py flowerconfig.py ./
RUN pip install . && rm -rf /src

# The working directory of every command: `celery -A tasks ...` finds celeryconfig (also
# installed) and Flower reads flowerconfig.py; both stay root-owned and read-only to `app`.
# /data is where Flower keeps its state (a volume in docker-compose.yml).
WORKDIR /app
COPY celeryconfig.py flowerconfig.py ./
RUN mkdir /data && chown app:app /data

# An explicit path: Flower then fails when the file is missing instead of silently
# starting without its settings (the auth check is in the Celery app, tasks/flowerauth.py).
ENV FLOWER_CONF=/app/flowerconfig.py

USER app

CMD ["dlq-replay", "--help"]
