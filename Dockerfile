# One image for every driftline service (worker, monitor, trainer, topic init, producer).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MODEL_STORE=/var/lib/driftline/model-store

WORKDIR /app
COPY pyproject.toml README.md ./
COPY driftline ./driftline
COPY events ./events
COPY models ./models
COPY worker ./worker
COPY monitor ./monitor
COPY trainer ./trainer
COPY broker ./broker
RUN pip install . && useradd --system --uid 10001 driftline \
    && mkdir -p "$MODEL_STORE" && chown driftline "$MODEL_STORE"

USER driftline
ENTRYPOINT ["driftline"]
CMD ["--help"]
