"""How the service is observed: Prometheus metrics and OpenTelemetry trace export."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class MetricsSettings(BaseModel):
    """`GET /metrics`: who may scrape it."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # Without a token: BRIDGE_SECURITY__METRICS_TOKEN when set, else the admin token (and
    # open while the admin API is). Meant for scrapers on a private network that cannot
    # send a bearer token; the answer names channels and counts, never a conversation.
    public: bool = False


class TracingSettings(BaseModel):
    """Trace export. Trace context (W3C traceparent) is always propagated; export is opt-in."""

    model_config = ConfigDict(extra="forbid")

    # An OTLP/HTTP collector, e.g. http://otel-collector:4318 (spans go to /v1/traces).
    # OTEL_EXPORTER_OTLP_ENDPOINT in the environment does the same when this is unset.
    # Needs the optional dependencies: pip install 'handoff-bridge[otel]'.
    otlp_endpoint: str | None = None
    service_name: str = Field(default="handoff-bridge", min_length=1, max_length=128)

    @field_validator("otlp_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value
