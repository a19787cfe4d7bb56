"""create_app(settings) -> web.Application: wiring only."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver

from adapters.console import web as console_web
from adapters.registry import build_agent_adapters, build_bot_adapters
from bridge import logs, otel
from bridge.api import (
    agents,
    availability,
    handoffs,
    health,
    index,
    integrations,
    metrics,
    openapi,
    outbox,
    routers,
    routing,
    subscriptions,
    supervision,
    transfers,
    webhooks,
)
from bridge.api.access import access_middleware, echo_request_id
from bridge.api.auth import auth_middleware, check_exposure, is_loopback
from bridge.api.deadlines import body_deadline_middleware
from bridge.api.errors import error_middleware
from bridge.api.input import input_middleware
from bridge.attachments import AttachmentCheck
from bridge.db.engine import create_engine, create_sessionmaker
from bridge.db.migrate import upgrade
from bridge.db.notify import PostgresWake
from bridge.db.repo import Store
from bridge.live import ConsoleHub
from bridge.outbound import OutboundPolicy
from bridge.ports.agent_side import AgentSideAdapter
from bridge.ports.context import AdapterContext
from bridge.ports.http import HttpClient
from bridge.ports.links import DeskLinks, JoinLinks, SupervisorLinks
from bridge.ports.wake import LocalWake, WakeBus
from bridge.relay import signing
from bridge.relay.handlers import Deliveries, job_registry
from bridge.relay.housekeeping import Housekeeper
from bridge.relay.observed import ObservedDeliverer, ObservedHooks
from bridge.relay.worker import RelayWorker
from bridge.resolver import OutboundGuard
from bridge.services.assignment import Assignment
from bridge.services.availability import PlatformAvailability, Prober
from bridge.services.availability_check import AvailabilityCheck
from bridge.services.handoff import HandoffService
from bridge.services.inbound.poller import Poller
from bridge.services.inbound.service import InboundService
from bridge.services.profiles import ProfileService
from bridge.services.queue import QueueAnnouncer
from bridge.services.routing_state import RoutingState
from bridge.services.supervision import Supervision
from bridge.services.timeouts import AcceptTimeouts, AcceptTimes
from bridge.services.transfers import Transfers
from bridge.services.typing import TypingRelay
from bridge.settings import Settings
from bridge.typedefs import (
    ASSIGNMENT,
    AVAILABILITY,
    BOTS,
    CALLBACK_HTTP,
    CONSOLE_HUB,
    DESK_LINKS,
    INBOUND,
    JOIN_LINKS,
    NAME_RESOLVER,
    OUTBOUND,
    PROFILES,
    ROUTING,
    SERVICE,
    SETTINGS,
    STORE,
    SUPERVISION,
    SUPERVISOR_LINKS,
    TRANSFERS,
    WORKER,
)

log = logging.getLogger(__name__)

# How long in-flight deliveries may finish when the service stops.
SHUTDOWN_GRACE_SECONDS = 5.0


def main_channel_of(settings: Settings) -> dict[str, str]:
    """Each channel's main channel (a main channel is its own)."""
    owners = {name: name for name in settings.main_channels()}
    for main in settings.main_channels():
        for target in settings.channels[main].regions.values():
            owners[target] = main
    return owners


async def _secret(store: Store, name: str, configured: str | None, make: Callable[[], str]) -> str:
    """The secret from the environment, else the one this bridge generated and stored."""
    if configured:
        return configured
    async with store.transaction() as tx:
        return await tx.secret(name, make, datetime.now(UTC))


async def _outbound(app: web.Application) -> AsyncIterator[None]:
    """The outbound URL policy, and the HTTP client for callers' URLs that obeys it."""
    settings = app[SETTINGS]
    owned = NAME_RESOLVER not in app
    resolver = DefaultResolver() if owned else app[NAME_RESOLVER]
    policy = OutboundPolicy.from_settings(
        settings.outbound, listens_on_loopback=is_loopback(settings.server.host)
    )
    guard = OutboundGuard(policy, resolver, settings.outbound.resolve_timeout_seconds)
    app[OUTBOUND] = guard
    # Its own connector, so names are resolved again at every delivery under the policy
    # (DNS may have changed since the URL was accepted).
    connector = aiohttp.TCPConnector(resolver=guard.delivery_resolver())
    session = aiohttp.ClientSession(headers={"User-Agent": "handoff-bridge"}, connector=connector)
    app[CALLBACK_HTTP] = HttpClient(
        session,
        timeout=settings.relay.request_timeout_seconds,
        quick_retries=settings.relay.quick_retries,
        policy=policy,
    )
    try:
        yield
    finally:
        await session.close()
        if owned:
            await resolver.close()


async def _resources(app: web.Application) -> AsyncIterator[None]:
    """Every resource set up in order and torn down in reverse."""
    settings = app[SETTINGS]
    # Replicas on one PostgreSQL database wake each other; one SQLite process has only itself.
    wake: WakeBus = LocalWake() if settings.database.is_sqlite else PostgresWake(settings.database)
    hub = ConsoleHub(broadcast=wake.conversation_changed)
    app[CONSOLE_HUB] = hub
    session = aiohttp.ClientSession(headers={"User-Agent": "handoff-bridge"})
    http = HttpClient(
        session,
        timeout=settings.relay.request_timeout_seconds,
        quick_retries=settings.relay.quick_retries,
    )
    engine = None
    try:
        # Adapters validate their options before anything touches the database; the
        # signing secret and the state store join their context once the store is up.
        context = AdapterContext(http, callbacks=app[CALLBACK_HTTP], live=hub)
        adapters: dict[str, AgentSideAdapter] = build_agent_adapters(settings, context)
        bots = build_bot_adapters(settings, context)
        app[BOTS] = bots
        # Kept out of every log line: the configured secrets and the adapters' own.
        logs.add_secrets(
            settings.security,
            list(settings.security.org_tokens),
            [adapter.options for adapter in adapters.values()],
            [bot.options for bot in bots.values()],
        )
        engine = create_engine(settings.database)
        store = Store(create_sessionmaker(engine))
        app[STORE] = store
        # Rules, settings and hours are checked here too, still before the database.
        routing = RoutingState(settings, store)
        app[ROUTING] = routing
        if settings.database.migrate_on_start:
            await upgrade(engine, settings.database)
        await routing.seed_directory()
        await routing.reload()
        security = settings.security
        webhook_secret = await _secret(
            store,
            "webhook_secret",
            security.webhook_secret.get_secret_value() if security.webhook_secret else None,
            signing.new_secret,
        )
        context.webhook_secret = webhook_secret
        console_secret = await _secret(
            store,
            "console_secret",
            security.console_secret.get_secret_value() if security.console_secret else None,
            lambda: secrets.token_urlsafe(32),
        )
        logs.add_secrets(webhook_secret, console_secret)  # generated ones too
        links = JoinLinks(
            console_secret, settings.server.base_url(), settings.console.link_ttl_seconds
        )
        app[JOIN_LINKS] = links
        app[DESK_LINKS] = DeskLinks(console_secret, settings.server.base_url())
        app[SUPERVISOR_LINKS] = SupervisorLinks(console_secret, settings.server.base_url())
        app[SUPERVISION] = Supervision(store, settings)

        def committed() -> None:
            # Deliveries were queued: the worker sends them; supervisor pages look again;
            # the other replicas' workers are told too (the message path does not NOTIFY
            # in its transaction: see bridge/db/notify.py).
            app[WORKER].wake()
            wake.outbox_changed()
            hub.anything_changed()

        announcer = QueueAnnouncer(
            store, settings.queue.update_seconds, on_commit=lambda: app[WORKER].wake()
        )
        # Unanswered chats: offered further, or back to the queue (services/timeouts.py).
        timeouts = AcceptTimeouts(
            store,
            routing,
            AcceptTimes.from_settings(settings),
            on_commit=lambda: app[WORKER].wake(),
            clock=lambda: datetime.now(UTC),
            on_queue_change=announcer.wake,
        )
        assignment = Assignment(
            store,
            routing,
            on_commit=committed,
            on_queue_change=announcer.wake,
            count_limit=settings.queue.count_limit,
            timeouts=timeouts,
        )
        app[ASSIGNMENT] = assignment
        app[TRANSFERS] = Transfers(
            store,
            routing,
            timeouts,
            adapters,
            {name: settings.channel_organization(name) for name in settings.channels},
            on_commit=lambda: app[WORKER].wake(),
            clock=lambda: datetime.now(UTC),
            on_queue_change=announcer.wake,
        )
        platforms = PlatformAvailability(
            adapters,
            cache_seconds=settings.availability.cache_seconds,
            timeout_seconds=settings.availability.timeout_seconds,
        )
        service = HandoffService(
            store,
            routing,
            assignment,
            settings.default_channel or "",
            adapters,
            links,
            on_commit=committed,
            prober=Prober(platforms),
            # Attachment links obey the same outbound policy as callback URLs.
            attachments=AttachmentCheck(settings.attachments, app[OUTBOUND]),
        )
        app[SERVICE] = service
        app[AVAILABILITY] = AvailabilityCheck(
            service,
            routing,
            store,
            {name: adapter.platform for name, adapter in adapters.items()},
            settings.queue.count_limit,
            lambda: datetime.now(UTC),
        )
        context.state_store = service

        def changed(conversation_id: str | None) -> None:
            app[WORKER].wake()
            if conversation_id is not None:
                hub.wake(conversation_id)

        app[PROFILES] = ProfileService(store, assignment, on_commit=changed)
        typing = TypingRelay(bots)
        inbound = InboundService(
            store,
            service,
            assignment,
            adapters,
            main_channel_of(settings),
            park_for=timedelta(seconds=settings.relay.keep_early_events_seconds),
            typing=typing,
        )
        app[INBOUND] = inbound
        jobs = job_registry(
            Deliveries(store, adapters, bots, app[CALLBACK_HTTP]),
            evaluate_routing=assignment.evaluate,
            replay_inbound=inbound.replay,
            move_on=service.live.move_on,
            accept_timeout=timeouts.fire,
        )
        # Observed: each attempt is a span of its request's trace, each outcome counted.
        worker = RelayWorker(store, ObservedDeliverer(jobs), ObservedHooks(service), settings.relay)
        app[WORKER] = worker
        worker.start()
        wake.on_outbox(worker.wake)
        wake.on_outbox(hub.anything_changed)  # another replica's changes, for supervisors
        wake.on_conversation(hub.wake_local)
        await wake.start()
        poller = Poller(store, inbound, adapters)
        poller.start()
        routing.start()
        housekeeper = Housekeeper(store, settings.relay)
        housekeeper.start()
        announcer.start()
        try:
            yield
        finally:
            # The relay first: the timers below are cancelled, and a statement cut off
            # by a cancellation can leave its pooled connection unusable for the next
            # user, which must not be the relay finishing its deliveries.
            await worker.stop(SHUTDOWN_GRACE_SECONDS)
            await typing.stop()  # each is one short attempt, under way already
            await announcer.stop()
            await housekeeper.stop()
            await routing.stop()
            await poller.stop()
            await wake.stop()
            # Units of work already handed over finish before the engine goes.
            await store.close()
    finally:
        await session.close()
        if engine is not None:
            await engine.dispose()


async def _stop_streams(app: web.Application) -> None:
    # Live console streams never end on their own; end them so shutdown is prompt.
    app[CONSOLE_HUB].shutdown()


def create_app(settings: Settings, *, resolver: AbstractResolver | None = None) -> web.Application:
    """The bridge as an aiohttp application; ConfigError when its API would be exposed open."""
    exposure_warnings = check_exposure(settings)

    async def warn_open_api(app: web.Application) -> None:
        # Logged at every start, so an API left open on purpose is never forgotten.
        for warning in exposure_warnings:
            log.warning("security.open_api", extra={"why": warning})

    app = web.Application(
        client_max_size=settings.server.max_body_bytes,
        # Input is checked before credentials, so no credential check sees a NUL or a
        # header that is not UTF-8.
        middlewares=[
            # Outermost: it sees the answer the client gets, and every line logged while
            # serving carries the request's id and trace.
            access_middleware,
            error_middleware,
            body_deadline_middleware,
            input_middleware,
            auth_middleware,
        ],
    )
    app[SETTINGS] = settings
    if resolver is not None:
        # DNS for callers' URLs; tests give one that answers what they need.
        app[NAME_RESOLVER] = resolver
    # First in, last out: spans of the shutdown are still exported.
    app.cleanup_ctx.append(otel.span_export)
    app.cleanup_ctx.append(_outbound)
    app.cleanup_ctx.append(_resources)
    app.on_startup.append(warn_open_api)
    app.on_shutdown.append(_stop_streams)
    app.on_response_prepare.append(echo_request_id)
    app.add_routes(index.routes)
    app.add_routes(health.routes)
    if settings.metrics.enabled:
        app.add_routes(metrics.routes)
    app.add_routes(handoffs.routes)
    app.add_routes(availability.routes)
    app.add_routes(outbox.routes)
    app.add_routes(webhooks.routes)
    app.add_routes(subscriptions.routes)
    app.add_routes(integrations.routes)
    app.add_routes(routers.routes)
    app.add_routes(agents.routes)
    app.add_routes(routing.routes)
    app.add_routes(transfers.routes)
    app.add_routes(supervision.routes)
    console_web.setup(app)
    openapi.setup(app)
    return app
