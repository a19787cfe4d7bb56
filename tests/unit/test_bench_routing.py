"""The routing benchmark measures what it claims: its table and facts route as intended.

No timing here: the bench prints figures, this only proves its inputs are valid.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bench import routing_inputs as bench
from bridge.routing.engine import Decision, HandoffFacts, RoutingTable, decide
from bridge.routing.steps import advance, validate_steps


@pytest.fixture(scope="module")
def table() -> RoutingTable:
    return bench.build_table()


def test_table_has_the_advertised_size(table: RoutingTable) -> None:
    codes = [table.regions.regions_of(main) for main in bench.MAIN_CHANNELS]
    assert sorted(table.regions.main_channels) == sorted(bench.MAIN_CHANNELS)
    assert [len(c) for c in codes] == [250, 250, 250, 250]
    # Each code has a channel of its own.
    assert len({channel for c in codes for channel in c.values()}) == 1_000
    assert {name: len(rules) for name, rules in table.rules.items()} == {bench.RULE_CHANNEL: 200}
    assert len(table.routers) == 100
    assert {len(steps) for steps in table.routers.values()} == {2, 3, 4}
    assert all(validate_steps(steps) == [] for steps in table.routers.values())
    assert all(router in table.routers for router in table.channel_router.values())
    assert len(table.channel_hours) > 0
    assert sum(bool(settings) for settings in table.channel_settings.values()) > 0


def test_the_late_rule_sits_deep_in_the_list(table: RoutingTable) -> None:
    names = [rule.name for rule in table.rules[bench.RULE_CHANNEL].rules]
    assert names.index(bench.rule_name(bench.RULE_TARGETS["late_rule"])) >= 190


Check = Callable[[RoutingTable, HandoffFacts, Decision], bool]


def _region_channel(table: RoutingTable, facts: HandoffFacts) -> str:
    assert facts.region
    return table.regions.regions_of(facts.main_channel)[facts.region]


def _aimed(kind: str) -> Check:
    expected = bench.rule_name(bench.RULE_TARGETS[kind])
    return lambda table, facts, decision: decision.rule_name == expected


# What one decision of each kind of facts must show; a kind without an entry fails below.
EXPECTED: dict[str, Check] = {
    "known_region": lambda table, facts, decision: (
        decision.region_rule == "region"
        and decision.trace[0].endswith(repr(_region_channel(table, facts)))
    ),
    "unknown_region": lambda table, facts, decision: (
        decision.region_rule == "region_unknown" and decision.channel == facts.main_channel
    ),
    "missing_region": lambda table, facts, decision: (
        decision.region_rule == "region_missing" and decision.channel == facts.main_channel
    ),
    "no_rule": lambda table, facts, decision: (
        decision.main_channel == bench.RULE_CHANNEL
        and decision.rule_name is None
        and "no rule matched" in decision.trace
    ),
    **{kind: _aimed(kind) for kind in bench.RULE_TARGETS},
    "kommunicate_settings": lambda table, facts, decision: (
        decision.assignee == "agent-007" and decision.settings.skip_bot_events == ("WELCOME_EVENT",)
    ),
    "team_setting": lambda table, facts, decision: decision.team_id == bench.team(7),
    "after_hours": lambda table, facts, decision: (
        decision.closed and decision.next_open is not None and decision.next_open > bench.NOW
    ),
}


@pytest.mark.parametrize("kind", sorted(bench.FACT_KINDS))
def test_each_kind_of_facts_routes_as_intended(table: RoutingTable, kind: str) -> None:
    facts = bench.make_facts(kind, 0)
    decision = decide(table, facts, bench.NOW)
    assert EXPECTED[kind](table, facts, decision), decision.trace


def test_generated_facts_are_the_advertised_number() -> None:
    facts = bench.generate_facts()
    assert len(facts) == bench.FACT_COUNT
    assert {item.main_channel for item in facts} == set(bench.MAIN_CHANNELS)


def test_advance_cases_escalate_through_all_three_steps() -> None:
    steps, directory = bench.advance_router(), bench.build_directory()
    reached = {
        advance(steps, progress, directory, created_at, now).progress.active_steps
        for progress, created_at, now in bench.advance_cases(6)
    }
    assert 3 in reached
    assert len(directory.presence) == bench.AGENT_COUNT
