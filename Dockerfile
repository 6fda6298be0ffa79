# The tools image: migrations, the monitors scheduler, the alert sink, the traffic generator and
# `servewatch release build`. The service itself runs from a release's image (compose.yaml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_LINK_MODE=copy \
    PATH="/app/.venv/bin:$PATH" SERVEWATCH_HOME=/data
RUN pip install --no-cache-dir uv
WORKDIR /app

COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY core ./core
COPY service ./service
COPY storage ./storage
COPY monitors ./monitors
COPY dashboards ./dashboards
COPY alerts ./alerts
COPY servewatch ./servewatch
COPY examples ./examples
# The runbooks, served at /runbooks by the monitors process (every alert links there).
COPY docs/runbooks.md ./docs/runbooks.md
RUN uv sync --frozen --no-dev

RUN useradd --create-home --uid 10001 servewatch && mkdir -p /data && chown servewatch /data
USER servewatch
VOLUME ["/data"]
EXPOSE 9101 9102
CMD ["servewatch", "monitor", "schedule", "--host", "0.0.0.0", "--port", "9101"]
