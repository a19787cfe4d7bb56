"""The routing benchmark's inputs: a large routing table, mixed facts, a router and agents.

The table is built the way the service builds it: a generated config goes through
`load_settings` and `compile_table`, and stored routers are added as `RoutingState.reload`
adds them. All 200 metadata rules sit on one main channel (`RULE_CHANNEL`), the worst case
for that channel; the other three main channels have regions only. Everything is
deterministic, so `tests/unit/test_bench_routing.py` can check that it routes as intended.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.routing.engine import HandoffFacts, RoutingTable
from bridge.routing.steps import Directory, Presence, Progress, RouterStep
from bridge.services.routing_state import compile_table
from bridge.settings import load_settings

MAIN_CHANNELS = tuple(f"site-{m}" for m in range(4))
RULE_CHANNEL = MAIN_CHANNELS[0]
CODES_PER_MAIN = 250
RULE_COUNT = 200
ROUTER_COUNT = 100
TEAM_COUNT = 20
AGENT_COUNT = 200
FACT_COUNT = 4_000
# A Wednesday, 12:30 UTC: the Berlin and New York desks are open, the Tokyo weekend desk is not.
NOW = datetime(2024, 5, 8, 12, 30, tzinfo=UTC)

HOURS = {
    "office-berlin": {
        "timezone": "Europe/Berlin",
        "weekly": {day: ["09:00-12:30", "13:00-17:00"] for day in ("mon", "tue", "wed", "thu")}
        | {"fri": ["09:00-15:00"]},
        "holidays": ["2024-12-25", "2024-12-26", "2025-01-01"],
    },
    "support-ny": {
        "timezone": "America/New_York",
        "weekly": {day: ["08:00-20:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat")},
    },
    "weekend-tokyo": {
        "timezone": "Asia/Tokyo",
        "weekly": {"sat": ["10:00-18:00"], "sun": ["10:00-16:00"]},
    },
}
CLOSED_HOURS = "weekend-tokyo"

# Rules cycle through eight shapes; `k % 8` picks the shape of rule k (0-based).
RULE_SHAPES = ("plan", "product", "order", "cart", "label", "flag", "email", "region")
# The rule each rule-matching kind of facts is built to hit, by 0-based position.
RULE_TARGETS: Mapping[str, int] = {
    "early_rule": 2,  # an order id prefix, near the top of the list
    "indexed_rule": 192,  # metadata.plan equals, near the end
    "range_rule": 195,  # a cart total range, with a `vip exists` check
    "late_rule": 197,  # a metadata key that must exist, near the end
    "label_rule": 100,  # customer.labels equals, half way
}
# Kinds of facts and how often each occurs (weights).
FACT_KINDS: Mapping[str, int] = {
    "known_region": 25,
    "unknown_region": 8,
    "missing_region": 8,
    "no_rule": 20,
    "early_rule": 6,
    "late_rule": 6,
    "indexed_rule": 5,
    "range_rule": 5,
    "label_rule": 5,
    "kommunicate_settings": 7,
    "team_setting": 3,
    "after_hours": 2,
}
KOMMUNICATE_SETTINGS: tuple[Mapping[str, Any], ...] = (
    {
        "skipRouting": "true",
        "defaultAssignee": "agent-007",
        "skipBotEvent": '["WELCOME_EVENT"]',
        "defaultAgentIds": ["agent-001", "agent-002"],
    },
    {"defaultAgentIds": ["agent-010"], "defaultBotIds": ["bot-1"], "WELCOME_MESSAGE": "Hi!"},
    # Empty values restore the channel's defaults, as Kommunicate does it.
    {"teamId": "", "defaultAgentIds": [], "skipRouting": False},
)


# -- the table ---------------------------------------------------------------------------------


def region_code(main: int, index: int) -> str:
    """The routing code of region `index` under main channel `main`."""
    return f"r{main}-{index:03d}"


def region_channel(main: int, index: int) -> str:
    """The channel region `index` of main channel `main` routes to."""
    return f"{MAIN_CHANNELS[main]}-r{index:03d}"


def team(number: int) -> str:
    """The id of team `number`."""
    return f"team-{number % TEAM_COUNT:02d}"


def _hours_of(serial: int) -> str | None:
    if serial % 10 == 3:
        return "office-berlin"
    if serial % 10 == 7:
        return "support-ny"
    return CLOSED_HOURS if serial % 20 == 9 else None


def _region_settings(serial: int) -> dict[str, Any]:
    if serial % 8 != 5:
        return {}
    variants: tuple[dict[str, Any], ...] = (
        {"defaultAgentIds": ["agent-001", "agent-002"], "skipBotEvent": '["WELCOME_EVENT"]'},
        {"welcome_message": f"Welcome to desk {serial}"},
        {"default_bot_ids": ["bot-1"], "teamId": team(serial)},
    )
    return variants[(serial // 8) % len(variants)]


def _region_config(main: int, index: int) -> dict[str, Any]:
    serial = main * CODES_PER_MAIN + index
    config: dict[str, Any] = {"platform": "console", "settings": _region_settings(serial)}
    hours = _hours_of(serial)
    if hours is not None:
        config["hours"] = hours
    if hours == CLOSED_HOURS:
        # Outside hours: back to the main channel, to a team, or (third case) fail.
        fallback = (serial // 20) % 3
        if fallback == 0:
            config["outside_hours"] = {"channel": MAIN_CHANNELS[main]}
        elif fallback == 1:
            config["outside_hours"] = {"team_id": team(serial + 1)}
    if serial % 3 == 0:
        config["team_id"] = team(serial)
    return config


def _rule(k: int) -> dict[str, Any]:
    shape = RULE_SHAPES[k % len(RULE_SHAPES)]
    when: list[dict[str, Any]]
    if shape == "plan":
        when = [{"field": "metadata.plan", "equals": f"plan-{k:03d}"}]
        then: dict[str, Any] = {"team_id": team(k)}
    elif shape == "product":
        when = [{"field": "metadata.product", "one_of": [f"prod-{k}", f"prod-{k}-b", k]}]
        then = {"channel": region_channel(0, k % CODES_PER_MAIN), "priority": 2}
    elif shape == "order":
        when = [{"field": "metadata.order_id", "prefix": f"ORD{k:03d}-"}]
        then = {"router_id": f"router-{k % ROUTER_COUNT:03d}"}
    elif shape == "cart":
        low = 10_000 + 10 * k
        when = [
            {"field": "metadata.cart_total", "gte": low, "lt": low + 5},
            {"field": "metadata.vip", "exists": True},
        ]
        then = {"priority": 5, "team_id": team(k)}
    elif shape == "label":
        when = [{"field": "customer.labels", "equals": f"label-{k:03d}"}]
        then = {"agent_ids": [f"agent-{k % AGENT_COUNT:03d}", f"agent-{(k + 1) % AGENT_COUNT:03d}"]}
    elif shape == "flag":
        when = [{"field": f"metadata.flag-{k:03d}", "exists": True}]
        then = {"assignee": f"agent-{k % AGENT_COUNT:03d}"}
    elif shape == "email":
        when = [{"field": "customer.email", "prefix": f"vip{k:03d}."}]
        then = {"team_id": team(k), "priority": 1}
    else:
        when = [
            {"field": "region", "equals": region_code(0, k % CODES_PER_MAIN)},
            {"field": "metadata.language", "one_of": [f"lang-{k:03d}"]},
        ]
        then = {"channel": region_channel(0, (k + 1) % CODES_PER_MAIN)}
    return {"name": rule_name(k), "when": when, "then": then}


def rule_name(k: int) -> str:
    """The name of rule `k` (0-based)."""
    return f"rule-{k:03d}-{RULE_SHAPES[k % len(RULE_SHAPES)]}"


def build_config() -> dict[str, Any]:
    """The settings, as a config file would give them."""
    channels: dict[str, Any] = {}
    for m, main in enumerate(MAIN_CHANNELS):
        channels[main] = {
            "platform": "console",
            "regions": {region_code(m, i): region_channel(m, i) for i in range(CODES_PER_MAIN)},
            "settings": {"welcome_message": f"Welcome to {main}"} if m % 2 else {},
            "team_id": team(m),
        }
        for i in range(CODES_PER_MAIN):
            channels[region_channel(m, i)] = _region_config(m, i)
    channels[RULE_CHANNEL]["rules"] = [_rule(k) for k in range(RULE_COUNT)]
    return {
        "default_channel": RULE_CHANNEL,
        "channels": channels,
        "teams": [
            {"id": team(t), "hours": {3: "office-berlin", 11: "support-ny"}.get(t)}
            for t in range(TEAM_COUNT)
        ],
        "hours": HOURS,
    }


def _step(index: int, kind: int) -> dict[str, Any]:
    preconditions = (
        [{"type": "users_offline", "value": 100}],
        [{"type": "task_waited", "value": 60 * index}],
        [
            {"type": "users_absent", "value": 50},
            {"type": "task_waited_in_previous_step", "value": 30},
        ],
    )[kind % 3]
    return {
        "index": index,
        "preconditions": preconditions,
        "team_ids": [team(kind + index)],
        "user_ids": [f"agent-{(kind * 7 + index) % AGENT_COUNT:03d}"],
    }


def stored_routers() -> dict[str, list[dict[str, Any]]]:
    """Routers as the store holds them: steps in giosg's JSON shape, 2 to 4 per router."""
    routers: dict[str, list[dict[str, Any]]] = {}
    for r in range(ROUTER_COUNT):
        first = {"index": 0, "team_ids": [team(r)], "organization_ids": []}
        routers[f"router-{r:03d}"] = [first] + [_step(i, r) for i in range(1, 2 + r % 3)]
    return routers


def stored_links() -> dict[str, str]:
    """Channel -> router links as the store holds them (every tenth region channel)."""
    links: dict[str, str] = {}
    for serial in range(1, len(MAIN_CHANNELS) * CODES_PER_MAIN, 10):
        main, index = divmod(serial, CODES_PER_MAIN)
        links[region_channel(main, index)] = f"router-{serial // 10:03d}"
    return links


def build_table() -> RoutingTable:
    """The routing table, through the real path: settings, compile_table, then stored routers."""
    static = compile_table(load_settings(**build_config()))
    # As RoutingState.reload: validate each stored router's steps, overlay the stored links.
    routers = {
        router_id: tuple(RouterStep.model_validate(step) for step in steps)
        for router_id, steps in stored_routers().items()
    }
    channel_router = dict(static.channel_router) | stored_links()
    return dataclasses.replace(static, routers=routers, channel_router=channel_router)


# -- the facts ---------------------------------------------------------------------------------


def _closed_region(rng: random.Random) -> tuple[int, int]:
    """A region whose channel is closed at NOW and has no outside-hours fallback."""
    serials = [
        s
        for s in range(len(MAIN_CHANNELS) * CODES_PER_MAIN)
        if _hours_of(s) == CLOSED_HOURS and (s // 20) % 3 == 2
    ]
    return divmod(rng.choice(serials), CODES_PER_MAIN)


def make_facts(kind: str, n: int) -> HandoffFacts:
    """Facts number `n` of one kind (see FACT_KINDS); the same kind and n give the same facts."""
    rng = random.Random(f"{kind}:{n}")
    main = rng.randrange(len(MAIN_CHANNELS))
    region: str | None = region_code(main, rng.randrange(CODES_PER_MAIN))
    customer: dict[str, Any] = {
        "id": f"cust-{n}",
        "email": f"user{n}@example.com",
        "firstname": "Ana",
        "lastname": "Lima",
        "labels": rng.choice([[], ["returning"], ["returning", "newsletter"]]),
    }
    metadata: dict[str, Any] = {
        "plan": rng.choice(["free", "pro", "team"]),
        "product": rng.choice(["widget", "gadget", 7]),
        "order_id": f"A-{n}",
        "cart_total": f"{rng.uniform(0, 500):.2f}",
        "currency": "EUR",
        "language": rng.choice(["en", "de", "es"]),
        "page": "/pricing",
    }
    settings: Mapping[str, Any] = {}
    if kind == "unknown_region":
        region = f"zz-{n}"
    elif kind == "missing_region":
        region = rng.choice([None, ""])
    elif kind == "after_hours":
        main, index = _closed_region(rng)
        region = region_code(main, index)
    elif kind == "kommunicate_settings":
        settings = KOMMUNICATE_SETTINGS[n % len(KOMMUNICATE_SETTINGS)]
    elif kind == "team_setting":
        settings = {"teamId": team(7)}
    elif kind == "no_rule" or kind in RULE_TARGETS:
        main = 0
        region = rng.choice([region_code(0, rng.randrange(CODES_PER_MAIN)), None])
        _aim(kind, customer, metadata)
    if kind in ("unknown_region", "missing_region", "no_rule"):
        metadata.pop("page")  # a little variety in size
    return HandoffFacts(MAIN_CHANNELS[main], region, customer, metadata, settings)


def _aim(kind: str, customer: dict[str, Any], metadata: dict[str, Any]) -> None:
    """Change facts on the rule channel so that they meet their target rule."""
    if kind not in RULE_TARGETS:
        return
    k = RULE_TARGETS[kind]
    shape = RULE_SHAPES[k % len(RULE_SHAPES)]
    if shape == "order":
        metadata["order_id"] = f"ORD{k:03d}-88"
    elif shape == "plan":
        metadata["plan"] = f"plan-{k:03d}"
    elif shape == "cart":
        metadata["cart_total"] = str(10_000 + 10 * k + 2)  # numeric text, as chats send it
        metadata["vip"] = "yes"
    elif shape == "flag":
        metadata[f"flag-{k:03d}"] = True
    elif shape == "label":
        customer["labels"] = [*customer["labels"], f"label-{k:03d}"]
    else:
        raise ValueError(f"no facts aimed at rule shape {shape!r}")


def generate_facts(count: int = FACT_COUNT, seed: int = 7) -> list[HandoffFacts]:
    """`count` facts of mixed kinds, in a shuffled but repeatable order."""
    rng = random.Random(seed)
    kinds = rng.choices(list(FACT_KINDS), weights=list(FACT_KINDS.values()), k=count)
    return [make_facts(kind, n) for n, kind in enumerate(kinds)]


# -- router steps ------------------------------------------------------------------------------


def build_directory(seed: int = 11) -> Directory:
    """AGENT_COUNT agents in TEAM_COUNT teams and one organization, with mixed presence."""
    rng = random.Random(seed)
    agents = [f"agent-{a:03d}" for a in range(AGENT_COUNT)]
    presence: dict[str, Presence] = {
        agent: rng.choices(("online", "offline", "absent"), weights=(4, 3, 3))[0]
        for agent in agents
    }
    members = {team(t): frozenset(agents[t::TEAM_COUNT]) for t in range(TEAM_COUNT)}
    return Directory(members, {"acme": frozenset(agents)}, presence)


def advance_router() -> tuple[RouterStep, ...]:
    """Three steps: a team, then two teams when 60% are offline, then everyone after 5 min."""
    return tuple(
        RouterStep.model_validate(step)
        for step in (
            {"index": 0, "team_ids": [team(0)]},
            {
                "index": 1,
                "preconditions": [{"type": "users_offline", "value": 60}],
                "team_ids": [team(1), team(2)],
            },
            {
                "index": 2,
                "preconditions": [{"type": "task_waited", "value": 300}],
                "organization_ids": ["acme"],
            },
        )
    )


AdvanceCase = tuple[Progress | None, datetime, datetime]


def advance_cases(count: int = 300) -> list[AdvanceCase]:
    """(progress, created_at, now): new tasks, tasks waiting on a step, tasks escalating."""
    cases: list[AdvanceCase] = []
    for n in range(count):
        created = NOW - timedelta(seconds=n)
        stage = n % 3
        if stage == 0:
            cases.append((None, created, created))
        elif stage == 1:
            cases.append((Progress((created,)), created, created + timedelta(seconds=30)))
        else:
            later = created + timedelta(seconds=20)
            cases.append((Progress((created, later)), created, created + timedelta(seconds=400)))
    return cases
