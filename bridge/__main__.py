"""Command line: `python -m bridge serve | listen | db upgrade | config check | secrets show`."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from datetime import UTC, datetime
from pathlib import Path

from bridge import logs
from bridge.errors import ConfigError, FieldProblem, InvalidInput, RequestError
from bridge.settings import DEFAULT_CONFIG, ServerSettings, Settings, load_settings


def _file_settings(args: argparse.Namespace) -> Settings:
    """The settings from the config file and the environment, without command-line flags."""
    path: Path | None = args.config
    if path is None and DEFAULT_CONFIG.exists():
        path = DEFAULT_CONFIG
    return load_settings(path)


def _settings(args: argparse.Namespace) -> Settings:
    settings = _file_settings(args)
    # Flags typed on the command line win over both the file and the environment.
    server: dict[str, object] = {}
    if getattr(args, "host", None):
        server["host"] = args.host
    if getattr(args, "port", None) is not None:
        server["port"] = args.port
    if server:
        settings.server = ServerSettings.model_validate(settings.server.model_dump() | server)
    return settings


async def _freeze_startup_objects(_app: object) -> None:
    """Keep what the start made (modules, mappers, models, settings) out of every later
    garbage collection: a full collection walked all of it again, a twentieth of the
    service's CPU under a load of messages. Freed by reference counting as before."""
    gc.collect()
    gc.freeze()


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from bridge.api.deadlines import server_options
    from bridge.app import create_app

    settings = _settings(args)
    logs.configure(settings.server.log_level, settings.server.log_format)
    app = create_app(settings)
    # After the app's own start (its cleanup contexts run first).
    app.on_startup.append(_freeze_startup_objects)
    web.run_app(
        app,
        host=settings.server.host,
        port=settings.server.port,
        shutdown_timeout=10,
        # The bridge writes its own access line (`http.access`, `server.access_log`):
        # aiohttp's would be a second line per request, in another format.
        access_log=None,
        **server_options(settings.server),
        print=lambda _: print(
            f"handoff bridge serving on http://{settings.server.host}:{settings.server.port}"
            f" (public URL {settings.server.base_url()}); stop with Ctrl+C\n"
            f"open {settings.server.base_url()}/ for what runs, the API docs and the agent desk",
            flush=True,
        ),
    )
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    from bridge.db.engine import create_engine
    from bridge.db.migrate import upgrade

    settings = _settings(args)
    logs.configure(settings.server.log_level, settings.server.log_format)

    async def run() -> None:
        engine = create_engine(settings.database)
        try:
            await upgrade(engine, settings.database)
        finally:
            await engine.dispose()

    asyncio.run(run())
    print("database is at the newest schema")
    return 0


def _config_check(args: argparse.Namespace) -> int:
    import aiohttp

    from adapters.registry import build_agent_adapters
    from bridge.ports.context import AdapterContext
    from bridge.ports.http import HttpClient

    settings = _settings(args)

    async def check() -> None:
        async with aiohttp.ClientSession() as session:
            http = HttpClient(session, timeout=1, quick_retries=0)
            build_agent_adapters(settings, AdapterContext(http))

    asyncio.run(check())
    from bridge.services.routing_state import compile_table

    compile_table(settings)  # rules, settings and hours
    for name in settings.main_channels():
        channel = settings.channels[name]
        regions = ", ".join(f"{code}→{target}" for code, target in channel.regions.items())
        default = " (default)" if name == settings.default_channel else ""
        print(f"main channel {name}{default} on {channel.platform}: {regions or 'no regions'}")
    print("config is valid")
    return 0


def _stored_webhook_secret(settings: Settings) -> str:
    """The webhook secret the bridge generated and keeps in its database (made if missing)."""
    from bridge.db.engine import create_engine, create_sessionmaker
    from bridge.db.migrate import upgrade
    from bridge.db.repo import Store
    from bridge.relay.signing import new_secret

    async def read() -> str:
        engine = create_engine(settings.database)
        try:
            await upgrade(engine, settings.database)
            async with Store(create_sessionmaker(engine)).transaction() as tx:
                return await tx.secret("webhook_secret", new_secret, datetime.now(UTC))
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _secrets_show(args: argparse.Namespace) -> int:
    """Print the webhook signing secret a bot needs to verify events."""
    settings = _settings(args)
    if settings.security.webhook_secret:
        print(settings.security.webhook_secret.get_secret_value())
        return 0
    print(_stored_webhook_secret(settings))
    return 0


def _listen(args: argparse.Namespace) -> int:
    """Receive, verify and print the events the bridge sends a bot."""
    from bridge import listen

    if args.secret:
        secret, source = args.secret, "--secret"
    else:
        # Not _settings: --host and --port are the listener's own, not the service's.
        settings = _file_settings(args)
        if settings.security.webhook_secret:
            secret = settings.security.webhook_secret.get_secret_value()
            source = "BRIDGE_SECURITY__WEBHOOK_SECRET"
        else:
            secret = _stored_webhook_secret(settings)
            source = "the bridge's database (as `python -m bridge secrets show` prints it)"
    listen.signing_key(secret)  # a wrong secret stops here, not at the first event
    listen.run(args.host, args.port, secret, source)
    return 0


def _route_explain(args: argparse.Namespace) -> int:
    """Print where a handoff (JSON file, or - for stdin) would go and why."""
    import json

    from pydantic import ValidationError

    from bridge.api.routing import decision_view
    from bridge.db.engine import create_engine, create_sessionmaker
    from bridge.db.migrate import upgrade
    from bridge.db.repo import Store
    from bridge.models import HandoffRequest
    from bridge.routing.engine import HandoffFacts, decide
    from bridge.services.routing_state import RoutingState

    settings = _settings(args)
    raw = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    try:
        request = HandoffRequest.model_validate_json(raw)
    except ValidationError as exc:
        print(f"invalid handoff: {exc}", file=sys.stderr)
        return 2

    async def run() -> dict[str, object]:
        engine = create_engine(settings.database)
        try:
            await upgrade(engine, settings.database)
            routing = RoutingState(settings, Store(create_sessionmaker(engine)))
            await routing.reload()  # routers and channel links stored through the API
        finally:
            await engine.dispose()
        main = request.channel or settings.default_channel or ""
        if main not in routing.table.regions.main_channels:
            raise InvalidInput(
                f"unknown main channel {main!r}", [FieldProblem("channel", "unknown main channel")]
            )
        facts = HandoffFacts(
            main,
            request.region,
            request.customer.model_dump(mode="json"),
            request.metadata,
            request.settings,
        )
        return decision_view(decide(routing.table, facts, datetime.now(UTC)))

    try:
        decision = asyncio.run(run())
    except RequestError as exc:
        problems = "; ".join(f"{f.field}: {f.problem}" for f in exc.fields) or exc.message
        print(f"cannot route this handoff: {problems}", file=sys.stderr)
        return 2
    print(json.dumps(decision, indent=2, ensure_ascii=False))
    return 0


def parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    root = argparse.ArgumentParser(prog="python -m bridge", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--config",
            type=Path,
            default=None,
            help=f"YAML settings file (default: {DEFAULT_CONFIG} when present)",
        )
        return p

    serve = with_config(commands.add_parser("serve", help="start the service"))
    serve.add_argument("--host", default=None, help="address to listen on")
    serve.add_argument("--port", type=int, default=None, help="port to listen on")
    serve.set_defaults(run=_serve)

    listen = with_config(
        commands.add_parser(
            "listen", help="a bot receiver: verify and print the events the bridge sends"
        )
    )
    listen.add_argument("--host", default="127.0.0.1", help="address to listen on")
    listen.add_argument("--port", type=int, default=9000, help="port to listen on")
    listen.add_argument(
        "--secret",
        default=None,
        help="the webhook secret (whsec_…); default BRIDGE_SECURITY__WEBHOOK_SECRET, else"
        " the one the bridge keeps in the database of --config",
    )
    listen.set_defaults(run=_listen)

    db = commands.add_parser("db", help="database tasks")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    with_config(db_commands.add_parser("upgrade", help="apply migrations")).set_defaults(
        run=_db_upgrade
    )

    config = commands.add_parser("config", help="configuration tasks")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    with_config(config_commands.add_parser("check", help="validate settings")).set_defaults(
        run=_config_check
    )

    route = commands.add_parser("route", help="routing tasks")
    route_commands = route.add_subparsers(dest="route_command", required=True)
    explain = with_config(
        route_commands.add_parser("explain", help="dry-run the routing of a handoff JSON file")
    )
    explain.add_argument("file", help="a POST /v1/handoffs body, or - for standard input")
    explain.set_defaults(run=_route_explain)

    secrets_cmd = commands.add_parser("secrets", help="secrets")
    secrets_commands = secrets_cmd.add_subparsers(dest="secrets_command", required=True)
    with_config(
        secrets_commands.add_parser("show", help="print the webhook signing secret for bots")
    ).set_defaults(run=_secrets_show)
    return root


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
