"""The outbox's jobs: one typed class per kind of row, stored as its kind string and JSON.

A job is what the bridge must do once a transaction commits: open a chat on a platform,
post a message there, close it (agent.py), send an event to the bot or a subscriber
(events.py), evaluate a conversation's routing again or apply platform events parked
for it (internal.py), check an unanswered chat when its accept time is up (timeouts.py).
Kind strings and payloads are the ones rows have always had, so rows queued by an earlier
version run after an upgrade.

Adding a kind of job is one class in one of these modules and one handler registered in
bridge/relay/handlers.py. Every job module is imported here, so `job_types()` knows
them all wherever a job is used.
"""

from bridge.relay.jobs.agent import CloseConversation, Message, OpenConversation, PostMessage
from bridge.relay.jobs.base import DeliveryStatus, Job, Place, job_types, lane
from bridge.relay.jobs.events import BotEvent, SubscriberEvent, event_body
from bridge.relay.jobs.internal import EvaluateRouting, ReplayInbound
from bridge.relay.jobs.moves import FallbackTimer, WithdrawConversation
from bridge.relay.jobs.timeouts import AcceptTimeout

__all__ = [
    "AcceptTimeout",
    "BotEvent",
    "CloseConversation",
    "DeliveryStatus",
    "EvaluateRouting",
    "FallbackTimer",
    "Job",
    "Message",
    "OpenConversation",
    "Place",
    "PostMessage",
    "ReplayInbound",
    "SubscriberEvent",
    "WithdrawConversation",
    "event_body",
    "job_types",
    "lane",
]
