"""Reference Desk, the made-up platform of docs/adapters.md: both sides, annotated to copy.

- `ReferenceAdapter` (channels: platform `reference`): its agents. See `agent.py`.
- `ReferenceBot` (bots: platform `reference`): its bots, which hand off to the bridge
  through an API of their own. See `bot.py`.

Both are registered (adapters/registry.py) as an example: they are only useful against
the fake platform the tests run (tests/adapters/fake_reference.py).
"""

from adapters.reference.agent import ReferenceAdapter
from adapters.reference.bot import ReferenceBot

__all__ = ["ReferenceAdapter", "ReferenceBot"]
