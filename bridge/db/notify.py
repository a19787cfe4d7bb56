"""Wake-ups across replicas through PostgreSQL `LISTEN/NOTIFY`.

Each replica keeps one dedicated connection that listens on two channels: deliveries
(notified by the store in the transaction that queues them, so PostgreSQL sends it at
commit, never for a rollback) and conversations (a changed conversation's id, sent from
this connection). Channel names carry the schema, so bridges sharing one database in
different schemas do not wake each other. The connection is re-opened with capped
backoff when it drops; after each (re)connect everything is woken once, since what was
notified meanwhile is lost. Readers keep a slow poll for whatever else goes missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.ports.wake import ConversationListener
from bridge.settings import DatabaseSettings

log = logging.getLogger(__name__)

# Channel names are identifiers (at most 63 bytes), so the schema is cut to fit; two
# schemas sharing a long prefix would only wake each other needlessly.
OUTBOX_CHANNEL_SQL = "'bridge_outbox_' || left(current_schema(), 48)"
CONVERSATION_CHANNEL_SQL = "'bridge_conversation_' || left(current_schema(), 42)"

_NOTIFY_OUTBOX = text(f"SELECT pg_notify({OUTBOX_CHANNEL_SQL}, '')")
# Seen by operators in pg_stat_activity, and by tests that cut the connection.
APPLICATION_NAME = "handoff-bridge-wake"


async def notify_outbox(session: AsyncSession) -> None:
    """Wake every replica's worker when the current transaction commits (PostgreSQL only)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(_NOTIFY_OUTBOX)


class PostgresWake:
    """The wake bus for replicas on one PostgreSQL database."""

    def __init__(
        self,
        settings: DatabaseSettings,
        *,
        retry_initial_seconds: float = 0.5,
        retry_max_seconds: float = 30.0,
        keepalive_seconds: float = 30.0,
    ) -> None:
        url = make_url(settings.url).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        server_settings = {"application_name": APPLICATION_NAME}
        if settings.pg_schema:
            server_settings["search_path"] = settings.pg_schema
        self._server_settings = server_settings
        self._retry_initial = retry_initial_seconds
        self._retry_max = retry_max_seconds
        self._keepalive = keepalive_seconds
        self._outbox_listeners: list[Callable[[], None]] = []
        self._conversation_listeners: list[ConversationListener] = []
        self._pending: set[str] = set()
        self._outbox_pending = False
        self._signal = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Set while listening; tests and the start-up wait on it.
        self.listening = asyncio.Event()
        # The listening connection's server process, for operators (pg_stat_activity).
        self.server_pid: int | None = None

    def on_outbox(self, listener: Callable[[], None]) -> None:
        """Call `listener` when any replica committed deliveries."""
        self._outbox_listeners.append(listener)

    def on_conversation(self, listener: ConversationListener) -> None:
        """Call `listener` when any replica said a conversation changed."""
        self._conversation_listeners.append(listener)

    def conversation_changed(self, conversation_id: str) -> None:
        """Queue a notification; ids queued together go out in one statement."""
        self._pending.add(conversation_id)
        self._signal.set()

    def outbox_changed(self) -> None:
        """Queue one outbox notification (however many commits ask before it is sent).

        Sent after the commit from this connection, not by the committing transaction:
        a NOTIFY in a transaction takes PostgreSQL's one notification-queue lock at
        commit, so every message's commit waited for the others' (measured: 228 against
        395 messages/s accepted). A replica that crashes between its commit and this
        notification has woken its own worker already; the others find the deliveries at
        their next poll.
        """
        self._outbox_pending = True
        self._signal.set()

    async def start(self, connect_within: float = 10.0) -> None:
        """Listen in the background; wait (bounded) for the first connection.

        A database that is down does not stop the start: the connection keeps being
        retried, and until then the slow polls find the work.
        """
        self._task = asyncio.create_task(self._run(), name="wake-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), connect_within)

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        delay = self._retry_initial
        while True:
            try:
                connection = await asyncpg.connect(
                    self._dsn, server_settings=self._server_settings, timeout=10
                )
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("wake.connect_failed", extra={"error": type(exc).__name__})
            else:
                try:
                    await self._listen(connection)
                except (
                    OSError,
                    TimeoutError,
                    asyncpg.PostgresError,
                    asyncpg.InterfaceError,
                ) as exc:
                    log.warning("wake.connection_lost", extra={"error": type(exc).__name__})
                finally:
                    if self.listening.is_set():
                        delay = self._retry_initial  # it worked: a new outage starts over
                    self.listening.clear()
                    connection.terminate()
            # Jittered, so replicas cut off together do not all reconnect at once.
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 2, self._retry_max)

    async def _listen(self, connection: asyncpg.Connection) -> None:
        """Listen until the connection is lost; send queued conversation notifications."""
        lost = asyncio.Event()

        def closed(_connection: Any) -> None:
            lost.set()
            self._signal.set()

        connection.add_termination_listener(closed)
        channels = await connection.fetchrow(
            f"SELECT {OUTBOX_CHANNEL_SQL}, {CONVERSATION_CHANNEL_SQL}"
        )
        assert channels is not None
        outbox_channel, conversation_channel = channels[0], channels[1]
        own_pid = connection.get_server_pid()
        self.server_pid = own_pid

        def outbox(_c: Any, pid: int, _channel: str, _payload: str) -> None:
            if pid == own_pid:
                return  # sent for this replica's own commits: its worker was woken then
            for listener in self._outbox_listeners:
                listener()

        def conversation(_c: Any, pid: int, _channel: str, payload: str) -> None:
            if pid == own_pid:
                return  # this replica's own news: its pages were woken in process
            for listener in self._conversation_listeners:
                listener(payload)

        await connection.add_listener(outbox_channel, outbox)
        await connection.add_listener(conversation_channel, conversation)
        self.listening.set()
        log.info("wake.listening", extra={"channel": outbox_channel})
        # Whatever was notified while this replica was not listening is lost: look once.
        outbox(None, 0, outbox_channel, "")
        for listener in self._conversation_listeners:
            listener(None)
        while not lost.is_set():
            try:
                await asyncio.wait_for(self._signal.wait(), self._keepalive)
            except TimeoutError:
                # A connection that died silently (no FIN) is only noticed by using it.
                await connection.execute("SELECT 1", timeout=10)
                continue
            self._signal.clear()
            if lost.is_set():
                break
            if self._outbox_pending:
                self._outbox_pending = False
                await connection.execute(f"SELECT pg_notify({OUTBOX_CHANNEL_SQL}, '')", timeout=10)
            ids, self._pending = sorted(self._pending), set()
            if ids:
                await connection.execute(
                    "SELECT pg_notify($1, id) FROM unnest($2::text[]) AS id",
                    conversation_channel,
                    ids,
                    timeout=10,
                )
        log.warning("wake.connection_lost", extra={"error": "closed"})
