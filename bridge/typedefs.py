"""Typed application keys: everything the handlers reach through `request.app`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.abc import AbstractResolver

if TYPE_CHECKING:
    from bridge.db.repo import Store
    from bridge.live import ConsoleHub
    from bridge.ports.bot_side import BotSideAdapter
    from bridge.ports.http import HttpClient
    from bridge.ports.links import DeskLinks, JoinLinks, SupervisorLinks
    from bridge.relay.worker import RelayWorker
    from bridge.resolver import OutboundGuard
    from bridge.services.assignment import Assignment
    from bridge.services.availability_check import AvailabilityCheck
    from bridge.services.handoff import HandoffService
    from bridge.services.inbound.service import InboundService
    from bridge.services.profiles import ProfileService
    from bridge.services.routing_state import RoutingState
    from bridge.services.supervision import Supervision
    from bridge.services.transfers import Transfers
    from bridge.settings import Settings

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
STORE: web.AppKey[Store] = web.AppKey("store")
SERVICE: web.AppKey[HandoffService] = web.AppKey("service")
INBOUND: web.AppKey[InboundService] = web.AppKey("inbound")
PROFILES: web.AppKey[ProfileService] = web.AppKey("profiles")
ROUTING: web.AppKey[RoutingState] = web.AppKey("routing")
ASSIGNMENT: web.AppKey[Assignment] = web.AppKey("assignment")
AVAILABILITY: web.AppKey[AvailabilityCheck] = web.AppKey("availability")
TRANSFERS: web.AppKey[Transfers] = web.AppKey("transfers")
BOTS: web.AppKey[dict[str, BotSideAdapter]] = web.AppKey("bots")
WORKER: web.AppKey[RelayWorker] = web.AppKey("worker")
CONSOLE_HUB: web.AppKey[ConsoleHub] = web.AppKey("console_hub")
JOIN_LINKS: web.AppKey[JoinLinks] = web.AppKey("join_links")
DESK_LINKS: web.AppKey[DeskLinks] = web.AppKey("desk_links")
SUPERVISOR_LINKS: web.AppKey[SupervisorLinks] = web.AppKey("supervisor_links")
SUPERVISION: web.AppKey[Supervision] = web.AppKey("supervision")
OUTBOUND: web.AppKey[OutboundGuard] = web.AppKey("outbound")
# The client for URLs callers give (bot callbacks, subscriptions), under the policy.
CALLBACK_HTTP: web.AppKey[HttpClient] = web.AppKey("callback_http")
# The DNS resolver under the outbound policy; aiohttp's default unless create_app is given one.
NAME_RESOLVER: web.AppKey[AbstractResolver] = web.AppKey("name_resolver")
