# handoff bridge: the service on SQLite in /app/data, with the built-in agent console.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Install the package (not editable) from a build directory that is removed afterwards,
# so the service runs from site-packages with its migrations and console files.
COPY pyproject.toml README.md /build/
COPY bridge/ /build/bridge/
COPY adapters/ /build/adapters/
RUN pip install --no-cache-dir /build && rm -rf /build

RUN useradd --system --create-home --home-dir /home/bridge --shell /usr/sbin/nologin bridge

WORKDIR /app
COPY config/ /app/config/
RUN mkdir -p /app/data && chown bridge:bridge /app/data

USER bridge

# Reachable from outside the container, so the service refuses to start until
# BRIDGE_SECURITY__API_TOKEN and BRIDGE_SECURITY__ADMIN_TOKEN are set (see the README).
# Set BRIDGE_SERVER__PUBLIC_URL to the address agents reach, or join and desk links
# point at http://127.0.0.1:8080, the container itself.
ENV BRIDGE_SERVER__HOST=0.0.0.0
EXPOSE 8080

# slim has no curl: check liveness with the standard library, on the port the service
# was configured with (BRIDGE_SERVER__PORT, else config/bridge.yaml, else 8080).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; from bridge.settings import DEFAULT_CONFIG, load_settings; port = load_settings(DEFAULT_CONFIG).server.port; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]

CMD ["python", "-m", "bridge", "serve", "--config", "/app/config/bridge.yaml"]
