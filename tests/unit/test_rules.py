"""Metadata rules: safe data conditions, first match wins, bad rules stop the start."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.errors import ConfigError
from bridge.routing.rules import Condition, Facts, Rule, RuleActions, RuleSet


def _matches(condition: dict[str, Any], facts: Facts) -> bool:
    """Whether a rule with this one condition matches."""
    rules = RuleSet("m", [{"name": "r", "when": [condition], "then": {"priority": 1}}], channels=[])
    return rules.first_match(facts) is not None


def _meta(**values: Any) -> Facts:
    return Facts(metadata=values)


def _labels(*labels: Any) -> Facts:
    return Facts(customer={"id": "c1", "labels": list(labels)})


@pytest.mark.parametrize(
    ("condition", "value", "expected"),
    [
        ({"equals": "vip"}, "vip", True),
        ({"equals": "vip"}, "VIP", False),
        ({"equals": "vip"}, "vip ", False),
        ({"equals": 3}, 3, True),
        ({"equals": 3}, 3.0, True),
        ({"equals": 3}, "3", True),  # metadata often arrives as text
        ({"equals": "3"}, 3, False),  # quoted in config means text
        ({"equals": 1}, True, False),
        ({"equals": True}, True, True),
        ({"equals": True}, 1, False),
        ({"equals": True}, "true", False),
        ({"equals": False}, False, True),
        ({"equals": False}, None, False),
        ({"one_of": ["gold", "vip"]}, "vip", True),
        ({"one_of": ["gold", "vip"]}, "silver", False),
        ({"one_of": ["gold", 2]}, "2", True),
        ({"one_of": ["gold", 2]}, None, False),
        ({"exists": True}, "x", True),
        ({"exists": True}, 0, True),
        ({"exists": True}, False, True),
        ({"exists": True}, "", False),
        ({"exists": True}, None, False),
        ({"exists": False}, None, True),
        ({"exists": False}, "", True),
        ({"exists": False}, "x", False),
        ({"prefix": "ord-"}, "ord-123", True),
        ({"prefix": "ord-"}, "ORD-123", False),
        ({"prefix": "1"}, 123, False),  # prefix is for text only
        ({"gt": 100}, 150, True),
        ({"gt": 100}, 100, False),
        ({"gte": 100}, 100, True),
        ({"lt": 100}, 99.5, True),
        ({"lt": 100}, 100, False),
        ({"lte": 100}, 100, True),
        ({"gte": 10, "lt": 20}, 10, True),
        ({"gte": 10, "lt": 20}, 20, False),
        ({"gte": 10, "lt": 20}, "15", True),
        ({"gte": 10, "lt": 20}, "1.5e1", True),
        ({"gt": -1}, "-0.5", True),
        ({"gt": 0}, 10**400, True),
    ],
)
def test_operators_on_metadata(condition: dict[str, Any], value: Any, expected: bool) -> None:
    assert _matches({"field": "metadata.k", **condition}, _meta(k=value)) is expected


@pytest.mark.parametrize(
    "value", ["abc", "", " 15", "15 ", "1_5", "nan", "inf", True, False, None, [15], {"n": 15}]
)
def test_a_non_numeric_value_never_matches_a_number_range(value: Any) -> None:
    for bounds in ({"gt": 0}, {"lt": 100}, {"gte": -(10**9), "lte": 10**9}):
        assert not _matches({"field": "metadata.k", **bounds}, _meta(k=value))


def test_non_finite_numbers_never_match() -> None:
    for value in (math.nan, math.inf, -math.inf):
        assert not _matches({"field": "metadata.k", "gt": -(10**9)}, _meta(k=value))
        assert not _matches({"field": "metadata.k", "lt": 10**9}, _meta(k=value))


def test_a_missing_key_matches_only_exists_false() -> None:
    facts = _meta(other="x")
    assert _matches({"field": "metadata.k", "exists": False}, facts)
    for condition in ({"equals": "x"}, {"one_of": ["x"]}, {"exists": True}, {"prefix": "x"}):
        assert not _matches({"field": "metadata.k", **condition}, facts)


@pytest.mark.parametrize(
    ("condition", "labels", "expected"),
    [
        ({"equals": "vip"}, ["new", "vip"], True),
        ({"equals": "vip"}, ["vipish"], False),
        ({"one_of": ["vip", "gold"]}, ["new", "gold"], True),
        ({"one_of": ["vip", "gold"]}, ["new"], False),
        ({"exists": True}, ["new"], True),
        ({"exists": True}, [], False),
        ({"exists": False}, [], True),
        ({"exists": False}, ["new"], False),
        ({"prefix": "plan:"}, ["new", "plan:pro"], True),
        ({"prefix": "plan:"}, ["new"], False),
    ],
)
def test_operators_on_labels(condition: dict[str, Any], labels: list[str], expected: bool) -> None:
    assert _matches({"field": "customer.labels", **condition}, _labels(*labels)) is expected


def test_labels_that_are_missing_or_not_a_list_count_as_none() -> None:
    for customer in ({}, {"labels": None}, {"labels": "vip"}, {"labels": 3}):
        facts = Facts(customer=customer)
        assert not _matches({"field": "customer.labels", "equals": "vip"}, facts)
        assert not _matches({"field": "customer.labels", "prefix": "v"}, facts)
        assert _matches({"field": "customer.labels", "exists": False}, facts)


def test_region_and_customer_fields() -> None:
    facts = Facts(
        region="de",
        customer={"id": "42", "email": "ceo@bigco.example", "firstname": "Ada", "lastname": "L"},
    )
    assert _matches({"field": "region", "one_of": ["de", "at", "ch"]}, facts)
    assert not _matches({"field": "region", "equals": "DE"}, facts)
    assert _matches({"field": "customer.id", "equals": 42}, facts)
    assert _matches({"field": "customer.email", "prefix": "ceo@"}, facts)
    assert _matches({"field": "customer.firstname", "exists": True}, facts)
    assert _matches({"field": "customer.lastname", "equals": "L"}, facts)
    assert _matches({"field": "region", "exists": False}, Facts())


def test_metadata_keys_may_contain_dots() -> None:
    assert _matches({"field": "metadata.car.model", "equals": "T"}, _meta(**{"car.model": "T"}))


VIP_RULES: list[dict[str, Any]] = [
    {
        "name": "vip",
        "when": [{"field": "metadata.plan", "equals": "vip"}],
        "then": {"team_id": "vip", "priority": 10},
    },
    {
        "name": "german big carts",
        "when": [
            {"field": "region", "one_of": ["de", "at"]},
            {"field": "metadata.cart_total", "gte": 500},
        ],
        "then": {"channel": "mysite-de", "router_id": "R"},
    },
    {
        "name": "tagged",
        "when": [{"field": "customer.labels", "equals": "escalate"}],
        "then": {"agent_ids": ["alice", "bob"], "assignee": "alice"},
    },
    {"name": "everyone else", "then": {"team_id": "support"}},
]


def _vip_rules(**kwargs: Any) -> RuleSet:
    return RuleSet("mysite", VIP_RULES, channels=["mysite-de", "mysite-en"], **kwargs)


def test_first_match_wins_and_says_why() -> None:
    rules = _vip_rules()
    both = Facts(region="de", metadata={"plan": "vip", "cart_total": 900})
    match = rules.first_match(both)
    assert match is not None
    assert (match.index, match.rule.name) == (0, "vip")
    assert match.rule.then.team_id == "vip"
    assert match.explanation == "rule 1 \"vip\" (metadata.plan = 'vip') → team 'vip', priority 10"

    german = rules.first_match(Facts(region="at", metadata={"plan": "free", "cart_total": "750"}))
    assert german is not None
    assert german.rule.then.channel == "mysite-de"
    assert german.explanation == (
        "rule 2 \"german big carts\" (region in ('de', 'at') and metadata.cart_total >= 500)"
        " → channel 'mysite-de', router 'R'"
    )

    tagged = rules.first_match(Facts(customer={"id": "1", "labels": ["escalate"]}))
    assert tagged is not None
    assert tagged.explanation.endswith("→ agents 'alice', 'bob', assignee 'alice'")

    rest = rules.first_match(Facts(region="at", metadata={"cart_total": 10}))
    assert rest is not None
    assert rest.explanation == "rule 4 \"everyone else\" (always) → team 'support'"


def test_no_rule_matches_when_none_holds() -> None:
    rules = RuleSet("mysite", VIP_RULES[:3], channels=["mysite-de"])
    assert rules.first_match(Facts(region="fr", metadata={"plan": "free"})) is None
    assert RuleSet("mysite", [], channels=[]).first_match(Facts()) is None


def test_an_earlier_catch_all_shadows_later_rules() -> None:
    rules = RuleSet("mysite", [VIP_RULES[3], *VIP_RULES[:3]], channels=["mysite-de"])
    match = rules.first_match(Facts(metadata={"plan": "vip"}))
    assert match is not None
    assert match.rule.name == "everyone else"


def test_facts_with_missing_or_odd_fields_never_crash() -> None:
    operands: list[dict[str, Any]] = [
        {"equals": "a"},
        {"equals": 1},
        {"equals": True},
        {"one_of": ["a", 2, False]},
        {"exists": True},
        {"prefix": "a"},
        {"gte": 1, "lt": 5},
    ]
    every_operator = [
        {"field": field, **operand}
        for field in ("region", "customer.id", "customer.email", "customer.labels", "metadata.x")
        for operand in operands
        if not (field == "customer.labels" and "gte" in operand)
    ]
    rules = RuleSet(
        "m",
        [
            {"name": f"r{i}", "when": [condition], "then": {"priority": i}}
            for i, condition in enumerate(every_operator)
        ],
        channels=[],
    )
    odd: list[Any] = [None, "", [], {}, [None, 3, {"a": 1}], {"a"}, math.nan, object(), b"a"]
    assert rules.first_match(Facts()) is None
    for value in odd:
        customer = {"id": value, "email": value, "labels": value}
        match = rules.first_match(Facts(region=None, customer=customer, metadata={"x": value}))
        # None of these equals, starts with or lies in anything: at most a value exists.
        assert match is None or match.rule.when[0].exists is True


def test_rule_objects_are_accepted_as_well_as_mappings() -> None:
    rule = Rule(
        name="typed",
        when=[Condition(field="metadata.plan", equals="pro")],
        then=RuleActions(team_id="pro"),
    )
    match = RuleSet("m", [rule], channels=[]).first_match(_meta(plan="pro"))
    assert match is not None
    assert match.rule is rule


def test_the_rule_set_does_not_change_when_its_input_does() -> None:
    raw: list[dict[str, Any]] = [
        {"name": "r", "when": [{"field": "metadata.p", "equals": "a"}], "then": {"team_id": "t"}}
    ]
    rules = RuleSet("m", raw, channels=[])
    raw[0]["when"][0]["equals"] = "b"
    raw.append({"name": "s", "then": {"team_id": "u"}})
    assert rules.first_match(_meta(p="a")) is not None
    assert rules.first_match(_meta(p="b")) is None
    assert len(rules) == 1


def _config_error(rules: list[Any], **kwargs: Any) -> str:
    kwargs.setdefault("channels", ["mysite-de"])
    with pytest.raises(ConfigError) as caught:
        RuleSet("mysite", rules, **kwargs)
    assert isinstance(caught.value, ValueError)
    return str(caught.value)


def _one(condition: dict[str, Any], then: dict[str, Any] | None = None) -> list[Any]:
    return [
        {"name": "ok", "then": {"priority": 1}},
        {"name": "bad one", "when": [condition], "then": {"priority": 1} if then is None else then},
    ]


@pytest.mark.parametrize(
    ("condition", "fragments"),
    [
        ({"field": "meta.plan", "equals": "x"}, ["when[0].field", "'meta.plan'"]),
        ({"field": "metadata.", "equals": "x"}, ["when[0].field"]),
        ({"field": "metadata.plan"}, ["metadata.plan: give exactly one", "got none"]),
        (
            {"field": "metadata.plan", "equals": "x", "prefix": "y"},
            ["metadata.plan: give exactly one", "got equals and prefix"],
        ),
        (
            {"field": "metadata.plan", "exists": True, "gt": 1},
            ["got exists and a number range"],
        ),
        ({"field": "metadata.plan", "equals": ["x"]}, ["when[0].equals: metadata.plan: must be"]),
        ({"field": "metadata.plan", "equals": None}, ["give exactly one"]),
        ({"field": "metadata.plan", "one_of": []}, ["when[0].one_of: metadata.plan"]),
        ({"field": "metadata.plan", "one_of": "vip"}, ["when[0].one_of: metadata.plan"]),
        ({"field": "metadata.plan", "one_of": ["a", {}]}, ["item 1"]),
        ({"field": "metadata.plan", "exists": "yes"}, ["when[0].exists: metadata.plan"]),
        ({"field": "metadata.plan", "prefix": ""}, ["when[0].prefix: metadata.plan"]),
        ({"field": "metadata.total", "gt": "10"}, ["when[0].gt: metadata.total: must be a number"]),
        ({"field": "metadata.total", "lte": True}, ["when[0].lte: metadata.total"]),
        ({"field": "metadata.total", "gt": math.nan}, ["when[0].gt"]),
        ({"field": "metadata.total", "gt": 1, "gte": 2}, ["gt or gte, not both"]),
        ({"field": "metadata.total", "lt": 1, "lte": 2}, ["lt or lte, not both"]),
        ({"field": "metadata.total", "gt": 5, "lt": 5}, ["metadata.total: the range is empty"]),
        ({"field": "metadata.total", "gte": 6, "lte": 5}, ["the range is empty"]),
        ({"field": "customer.labels", "gt": 5}, ["customer.labels: labels take"]),
        ({"field": "metadata.plan", "equal": "x"}, ["when[0].equal"]),
    ],
)
def test_a_bad_condition_names_the_rule_and_the_field(
    condition: dict[str, Any], fragments: list[str]
) -> None:
    message = _config_error(_one(condition))
    assert message.startswith("channels.mysite.rules[1] (bad one): ")
    for fragment in fragments:
        assert fragment in message


def test_a_point_range_is_allowed() -> None:
    assert _matches({"field": "metadata.n", "gte": 5, "lte": 5}, _meta(n=5))


@pytest.mark.parametrize(
    ("then", "fragment"),
    [
        ({}, "then: give at least one of"),
        ({"team_id": ""}, "then.team_id: must be a non-empty id"),
        ({"agent_ids": []}, "then.agent_ids: must be a non-empty list"),
        ({"agent_ids": ["a", None]}, "then.agent_ids"),
        ({"priority": "high"}, "then.priority: must be a whole number"),
        ({"priority": 1.5}, "then.priority"),
        ({"queue": "x"}, "then.queue"),
    ],
)
def test_bad_actions_name_the_rule(then: dict[str, Any], fragment: str) -> None:
    message = _config_error(_one({"field": "region", "exists": True}, then))
    assert message.startswith("channels.mysite.rules[1] (bad one): ")
    assert fragment in message


def test_rules_without_a_name_or_that_are_not_objects() -> None:
    message = _config_error([{"then": {"priority": 1}}, "vip", {"name": "  ", "then": {}}])
    assert "channels.mysite.rules[0] (unnamed): name: Field required" in message
    assert "channels.mysite.rules[1] (unnamed)" in message
    assert "channels.mysite.rules[2] (unnamed): name:" in message


def test_every_bad_rule_is_reported_at_once() -> None:
    message = _config_error(
        [
            {"name": "a", "when": [{"field": "nope", "equals": 1}], "then": {"priority": 1}},
            {"name": "b", "then": {"channel": "elsewhere"}},
        ]
    )
    assert "rules[0] (a)" in message
    assert "rules[1] (b)" in message


def test_a_rule_may_only_pick_a_channel_of_its_main_channel() -> None:
    message = _config_error([{"name": "away", "then": {"channel": "othersite-de"}}])
    assert message.startswith("channels.mysite.rules[0] (away): then.channel: 'othersite-de'")
    assert "'mysite-de'" in message
    # The main channel itself and its region channels are fine.
    RuleSet("mysite", [{"name": "home", "then": {"channel": "mysite"}}], channels=["mysite-de"])


def test_a_rule_may_only_pick_a_known_team() -> None:
    message = _config_error([{"name": "t", "then": {"team_id": "ghosts"}}], teams=["vip"])
    assert message == "channels.mysite.rules[0] (t): then.team_id: unknown team 'ghosts'"
    RuleSet("m", [{"name": "t", "then": {"team_id": "vip"}}], channels=[], teams=["vip"])
    # Without a list of teams (teams come later from an API), any team id is accepted.
    RuleSet("m", [{"name": "t", "then": {"team_id": "ghosts"}}], channels=[])


def test_numeric_ids_in_actions_become_text() -> None:
    rules = RuleSet("m", [{"name": "t", "then": {"team_id": 7}}], channels=[], teams=["7"])
    assert rules.rules[0].then.team_id == "7"


def test_duplicate_rule_names_are_an_error() -> None:
    message = _config_error(
        [{"name": "vip", "then": {"priority": 1}}, {"name": "vip", "then": {"priority": 2}}]
    )
    assert message == "channels.mysite.rules[1] (vip): name: repeats rules[0]"


# -- property: first_match is the lowest-index rule whose conditions all hold ------------------

FIELDS = ("region", "customer.email", "customer.labels", "metadata.plan", "metadata.total")
TEXTS = ("vip", "v1", "1", "2.5", "-3", "")
SCALARS: tuple[Any, ...] = (*TEXTS, 1, 2.5, 0, -3, True, False)


def _operands(field: str) -> st.SearchStrategy[dict[str, Any]]:
    choices = [
        st.builds(lambda v: {"equals": v}, st.sampled_from([s for s in SCALARS if s != ""])),
        st.builds(
            lambda vs: {"one_of": vs},
            st.lists(st.sampled_from([s for s in SCALARS if s != ""]), min_size=1, max_size=3),
        ),
        st.builds(lambda b: {"exists": b}, st.booleans()),
        st.builds(lambda p: {"prefix": p}, st.sampled_from(["v", "1", "-", "x"])),
    ]
    if field != "customer.labels":
        choices.append(
            st.builds(
                lambda low, width, lower, upper: (
                    {k: v for k, v in ((lower, low), (upper, low + width)) if k is not None}
                    or {"gte": low}
                ),
                st.sampled_from([-3, 0, 1, 2]),
                st.sampled_from([1, 2.5]),
                st.sampled_from([None, "gt", "gte"]),
                st.sampled_from([None, "lt", "lte"]),
            )
        )
    return st.one_of(choices)


def _conditions(field: str) -> st.SearchStrategy[dict[str, Any]]:
    return _operands(field).map(lambda operand: {"field": field, **operand})


# Built once per field: a flatmap would build new strategies on every draw, which is slow.
CONDITIONS = st.one_of([_conditions(field) for field in FIELDS])
# One rule in ten has no conditions (a catch-all); the rest test one or two facts.
WHEN = st.tuples(st.integers(0, 9), st.lists(CONDITIONS, min_size=1, max_size=2)).map(
    lambda drawn: [] if drawn[0] == 0 else drawn[1]
)
RULES = st.lists(WHEN, max_size=8)
FACT_VALUES = st.sampled_from((*SCALARS, None, math.nan))
# Facts mostly carry every field, so conditions hold often enough to tell rules apart.
FACTS = st.builds(
    lambda region, email, labels, metadata: Facts(
        region=region,
        customer={"id": "c", **email, **labels},
        metadata=metadata,
    ),
    st.sampled_from([None, *TEXTS]),
    st.one_of(st.just({}), FACT_VALUES.map(lambda v: {"email": v})),
    st.one_of(
        st.just({}), st.lists(st.sampled_from(TEXTS), max_size=3).map(lambda v: {"labels": v})
    ),
    st.fixed_dictionaries({}, optional={"plan": FACT_VALUES, "total": FACT_VALUES})
    | st.fixed_dictionaries({"plan": FACT_VALUES, "total": FACT_VALUES}),
)


def _number(value: Any) -> float | None:
    # The universe above holds no text like "nan" or " 1", so float() is a fair reference.
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _same(wanted: Any, value: Any) -> bool:
    if isinstance(wanted, bool) or isinstance(value, bool):
        return isinstance(wanted, bool) and isinstance(value, bool) and wanted == value
    if isinstance(wanted, str):
        return isinstance(value, str) and value == wanted
    return bool(_number(value) == wanted)


def _test(condition: Mapping[str, Any], value: Any) -> bool:
    if "equals" in condition:
        return _same(condition["equals"], value)
    if "one_of" in condition:
        return any(_same(wanted, value) for wanted in condition["one_of"])
    if "prefix" in condition:
        return isinstance(value, str) and value.startswith(condition["prefix"])
    number = _number(value)
    if number is None:
        return False
    bounds = {"gt": float.__gt__, "gte": float.__ge__, "lt": float.__lt__, "lte": float.__le__}
    return all(bounds[op](number, float(condition[op])) for op in bounds if op in condition)


def _holds(condition: Mapping[str, Any], facts: Facts) -> bool:
    field = condition["field"]
    if field == "region":
        value = facts.region
    elif field.startswith("customer."):
        value = facts.customer.get(field.removeprefix("customer."))
    else:
        value = facts.metadata.get(field.removeprefix("metadata."))
    if field == "customer.labels":
        labels: list[Any] = facts.customer.get("labels") or []
        if "exists" in condition:
            return any(label != "" for label in labels) is condition["exists"]
        return any(_test(condition, label) for label in labels)
    if "exists" in condition:
        return (value is not None and value != "") is condition["exists"]
    return _test(condition, value)


@settings(max_examples=400, deadline=None)
@given(RULES, FACTS)
def test_first_match_is_the_lowest_rule_whose_conditions_all_hold(
    whens: list[list[dict[str, Any]]], facts: Facts
) -> None:
    rules = RuleSet(
        "m",
        [{"name": f"r{i}", "when": when, "then": {"priority": i}} for i, when in enumerate(whens)],
        channels=[],
    )
    expected = next(
        (i for i, when in enumerate(whens) if all(_holds(c, facts) for c in when)), None
    )
    match = rules.first_match(facts)
    assert (None if match is None else match.index) == expected
    if match is not None:
        assert match.rule.name == f"r{expected}"


@settings(max_examples=400, deadline=None)
@given(st.lists(CONDITIONS, min_size=1, max_size=6), FACTS)
def test_a_condition_holds_exactly_when_the_reference_says_so(
    conditions: list[dict[str, Any]], facts: Facts
) -> None:
    # One condition per rule, so every condition's verdict shows in the decision.
    rules = RuleSet(
        "m",
        [{"name": f"r{i}", "when": [c], "then": {"priority": i}} for i, c in enumerate(conditions)],
        channels=[],
    )
    holding = [i for i, condition in enumerate(conditions) if _holds(condition, facts)]
    match = rules.first_match(facts)
    assert (None if match is None else match.index) == (holding[0] if holding else None)
    for i, condition in enumerate(conditions):
        alone = RuleSet(
            "m", [{"name": "r", "when": [condition], "then": {"priority": 1}}], channels=[]
        )
        assert (alone.first_match(facts) is not None) is (i in holding), condition
