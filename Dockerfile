# Watchtower's API and monitor scheduler; compose.yaml runs it beside PostgreSQL, Prometheus and Grafana.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY watchtower ./watchtower
COPY detectors ./detectors
COPY postmortems ./postmortems
COPY alerts ./alerts
RUN pip install . && useradd --create-home --uid 1000 watchtower

USER watchtower
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["watchtower", "serve", "--host", "0.0.0.0", "--port", "8000"]
