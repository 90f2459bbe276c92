# One image for every driftline service (worker, monitor, trainer, topic init, producer).
# Each service serves /metrics, /healthz and /readyz on its *_HTTP_PORT; docker-compose.yml
# sets the port and the healthcheck that probes /healthz.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MODEL_STORE=/var/lib/driftline/model-store \
    NUMBA_CACHE_DIR=/var/cache/driftline/numba

WORKDIR /app

# Dependencies first, from pyproject.toml alone: editing the code does not reinstall
# TensorFlow, CatBoost and the rest (this layer stays cached).
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(deps))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY driftline ./driftline
COPY events ./events
COPY models ./models
COPY worker ./worker
COPY monitor ./monitor
COPY trainer ./trainer
COPY broker ./broker
# The compiled loops (models/jit.py: forest walk, feature statistics; worker/rings.py: state
# pushes) go into numba's cache here, not into every container's first process. numba needs
# a writable cache directory (it refuses to import otherwise): this one is writable by any
# user the container runs as; with a read-only root file system, point NUMBA_CACHE_DIR at a
# writable volume.
RUN pip install --no-deps . \
    && (cd / && python -c "from models import jit; from worker import rings; jit.warm(); rings.warm()") \
    && useradd --system --uid 10001 driftline \
    && mkdir -p "$MODEL_STORE" && chown driftline "$MODEL_STORE" \
    && chmod -R a+rwX "$NUMBA_CACHE_DIR"

USER driftline
ENTRYPOINT ["driftline"]
CMD ["--help"]
