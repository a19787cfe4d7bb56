"""What adapters share that is not a core contract: secret options and checks, message keys.

The contracts themselves (the agent and bot sides, the gateway, the adapter context)
belong to the core, in `bridge.ports`.
"""

from __future__ import annotations

import hmac
import os
from typing import Annotated

from pydantic import BeforeValidator, SecretStr

from bridge.ports.agent_side import ConversationRef, OutboundMessage


def _from_environment(name: object) -> SecretStr:
    if not isinstance(name, str) or not name:
        raise ValueError("must name an environment variable that holds the secret")
    value = os.environ.get(name)
    if not value:
        raise ValueError(f"environment variable {name} is not set")
    return SecretStr(value)


# An option that holds a secret. The config file names the environment variable
# (`api_key: KOMMUNICATE_API_KEY`) and the value is read from there at start, so secrets
# never sit in a config file; a missing variable is a startup error naming the option.
EnvSecret = Annotated[SecretStr, BeforeValidator(_from_environment)]


def message_key(conversation: ConversationRef, message: OutboundMessage) -> str:
    """The bridge's id for one message posted to one conversation: the same on every attempt.

    `seq` is the message's row id in the store, so a post repeated after a lost answer, by
    another replica or after a restart names the same message; adapters send it wherever
    the platform's API takes a client message id.
    """
    return f"{conversation.id}:{message.seq}"


def secret_matches(given: str | None, expected: str) -> bool:
    """Compare a presented secret in constant time."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
