# bihuan API and case worker (one image; the compose file picks the command).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BIHUAN_DATA_DIR=/app/var

# Only what the package is built from; tests, bench and the dev extra stay out of the image.
COPY pyproject.toml /src/
COPY domain /src/domain
COPY config /src/config
COPY workflows /src/workflows
COPY activities /src/activities
COPY ledger /src/ledger
COPY api /src/api
COPY cli /src/cli
COPY runtime /src/runtime
COPY notifications /src/notifications

# The source tree is removed after the install so the code that runs is the installed package.
RUN pip install /src \
    && rm -rf /src \
    && useradd --system --uid 10001 --user-group --home-dir /app --create-home bihuan \
    && mkdir -p /app/var \
    && chown -R bihuan:bihuan /app

USER bihuan
WORKDIR /app
EXPOSE 8000

CMD ["bihuan", "api"]
