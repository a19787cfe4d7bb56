"""Settings: YAML from config/, BRIDGE_* environment overrides, secrets from the environment.

`loader` holds the whole (`Settings`, `load_settings`); the sections are in `service`,
`security` and `directory`.
"""

from bridge.settings.attachments import AttachmentSettings
from bridge.settings.directory import (
    AgentSettings,
    BotSettings,
    ChannelSettings,
    OutsideHours,
    TeamSettings,
)
from bridge.settings.loader import DEFAULT_CONFIG, Settings, load_settings
from bridge.settings.observability import MetricsSettings, TracingSettings
from bridge.settings.security import OrgToken, SecuritySettings
from bridge.settings.service import (
    DEFAULT_RETRY_SCHEDULE,
    AvailabilitySettings,
    ConsoleSettings,
    DatabaseSettings,
    OutboundSettings,
    QueueSettings,
    RelaySettings,
    ServerSettings,
)

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_RETRY_SCHEDULE",
    "AgentSettings",
    "AttachmentSettings",
    "AvailabilitySettings",
    "BotSettings",
    "ChannelSettings",
    "ConsoleSettings",
    "DatabaseSettings",
    "MetricsSettings",
    "OrgToken",
    "OutboundSettings",
    "OutsideHours",
    "QueueSettings",
    "RelaySettings",
    "SecuritySettings",
    "ServerSettings",
    "Settings",
    "TeamSettings",
    "TracingSettings",
    "load_settings",
]
