"""Conversation settings overrides, as Kommunicate's conversation settings describe them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from bridge.errors import InvalidInput
from bridge.routing.overrides import ConversationSettings, merge_settings, parse_settings


def _problems(raw: Any, **kwargs: Any) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        parse_settings(raw, **kwargs)
    assert caught.value.status == 422
    return {problem.field: problem.problem for problem in caught.value.fields}


def test_the_seeds_example_in_kommunicates_spelling() -> None:
    parsed = parse_settings(
        {
            "defaultAgentIds": ["alice@example.com"],
            "defaultBotIds": ["faq-bot"],
            "defaultAssignee": "faq-bot",
            "skipBotEvent": '["WELCOME_EVENT"]',
            "skipRouting": True,
            "teamId": 4321,
            "WELCOME_MESSAGE": "Hi! A person will be with you shortly.",
        }
    )
    assert parsed == {
        "default_agent_ids": ["alice@example.com"],
        "default_bot_ids": ["faq-bot"],
        "default_assignee": "faq-bot",
        "skip_bot_events": ["WELCOME_EVENT"],
        "skip_routing": True,
        "team_id": "4321",
        "welcome_message": "Hi! A person will be with you shortly.",
    }


@pytest.mark.parametrize(
    ("ours", "theirs", "value"),
    [
        ("default_agent_ids", "defaultAgentIds", ["a", "b"]),
        ("default_bot_ids", "defaultBotIds", ["bot-1"]),
        ("default_assignee", "defaultAssignee", "agent-7"),
        ("skip_routing", "skipRouting", True),
        ("skip_bot_events", "skipBotEvent", ["WELCOME_EVENT"]),
        ("team_id", "teamId", "sales"),
        ("welcome_message", "WELCOME_MESSAGE", "Hello"),
    ],
)
def test_both_spellings_mean_the_same(ours: str, theirs: str, value: Any) -> None:
    assert parse_settings({ours: value}) == parse_settings({theirs: value}) == {ours: value}


@pytest.mark.parametrize(
    "events",
    ['["WELCOME_EVENT", "FALLBACK"]', ["WELCOME_EVENT", "FALLBACK"], ("WELCOME_EVENT", "FALLBACK")],
)
def test_skip_bot_event_as_json_text_or_a_list(events: Any) -> None:
    assert parse_settings({"skipBotEvent": events}) == {
        "skip_bot_events": ["WELCOME_EVENT", "FALLBACK"]
    }


@pytest.mark.parametrize("events", ["WELCOME_EVENT", '{"a": 1}', "[1, 2", 7, '[""]', "[3]"])
def test_skip_bot_event_that_is_no_list_of_names_is_refused(events: Any) -> None:
    problems = _problems({"skipBotEvent": events})
    assert list(problems) == ["settings.skipBotEvent"]


def test_skip_routing_as_text_as_the_seeds_start_conversation_passes_it() -> None:
    assert parse_settings({"skipRouting": "true"}) == {"skip_routing": True}
    assert parse_settings({"skip_routing": "False"}) == {"skip_routing": False}


def test_numeric_ids_become_text_and_repeats_count_once() -> None:
    parsed = parse_settings({"teamId": 7, "defaultAgentIds": ["a", 12, "a", " b "]})
    assert parsed == {"team_id": "7", "default_agent_ids": ["a", "12", "b"]}


def test_unknown_key_is_refused_with_a_suggestion() -> None:
    problems = _problems({"skipRoutng": True, "teamId": "x"})
    assert list(problems) == ["settings.skipRoutng"]
    assert "skipRouting" in problems["settings.skipRoutng"]


def test_unknown_key_without_a_near_spelling_lists_the_known_ones() -> None:
    problems = _problems({"colour": "blue"})
    assert "skip_routing" in problems["settings.colour"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("skipRouting", "yes"),
        ("skip_routing", 1),
        ("defaultAgentIds", "alice"),
        ("default_bot_ids", [None]),
        ("default_bot_ids", ["ok", ""]),
        ("defaultAssignee", ["a"]),
        ("defaultAssignee", True),
        ("teamId", 1.5),
        ("WELCOME_MESSAGE", 42),
        ("welcome_message", "x" * 10_001),
        ("default_agent_ids", ["a"] * 101),
    ],
)
def test_wrong_type_names_the_field_as_given(key: str, value: Any) -> None:
    assert list(_problems({key: value})) == [f"settings.{key}"]


def test_every_problem_is_reported_at_once_under_the_given_prefix() -> None:
    problems = _problems(
        {"skipRouting": "maybe", "teamId": [], "nope": 1},
        where="channels.mysite.settings",
    )
    assert set(problems) == {
        "channels.mysite.settings.skipRouting",
        "channels.mysite.settings.teamId",
        "channels.mysite.settings.nope",
    }


def test_the_same_setting_under_two_spellings_is_refused() -> None:
    problems = _problems({"skip_routing": True, "skipRouting": False})
    assert "settings.skip_routing" in problems["settings.skipRouting"]


def test_settings_that_are_not_an_object_are_refused() -> None:
    assert list(_problems(["skipRouting"])) == ["settings"]


def test_empty_values_are_not_given() -> None:
    # Kommunicate passes empty values to bring back the dashboard's rules.
    raw: dict[str, Any] = {
        "defaultAgentIds": [],
        "defaultBotIds": None,
        "defaultAssignee": "",
        "skipBotEvent": "",
        "teamId": "  ",
        "WELCOME_MESSAGE": "",
    }
    assert parse_settings(raw) == {}


def test_parsing_is_idempotent_and_survives_json() -> None:
    parsed = parse_settings({"defaultBotIds": ["b"], "skipBotEvent": '["E"]', "teamId": 3})
    assert parse_settings(parsed) == parsed
    assert json.loads(json.dumps(parsed)) == parsed


CHANNEL = parse_settings(
    {
        "defaultAgentIds": ["lead"],
        "defaultBotIds": ["faq-bot"],
        "teamId": "support",
        "WELCOME_MESSAGE": "Welcome to support",
        "skipBotEvent": ["WELCOME_EVENT"],
    }
)


def test_empty_settings_inherit_the_channels_defaults() -> None:
    empties: list[dict[str, Any]] = [{}, {"defaultAgentIds": [], "teamId": "", "skipRouting": None}]
    for given in empties:
        settings = merge_settings(CHANNEL, parse_settings(given))
        assert settings == ConversationSettings(
            default_agent_ids=("lead",),
            default_bot_ids=("faq-bot",),
            team_id="support",
            welcome_message="Welcome to support",
            skip_bot_events=("WELCOME_EVENT",),
        )


def test_conversation_keys_override_the_channels_and_lists_replace() -> None:
    given = parse_settings({"defaultAgentIds": ["bob"], "teamId": "vip", "skipRouting": True})
    settings = merge_settings(CHANNEL, given)
    assert settings.default_agent_ids == ("bob",)  # not ("lead", "bob")
    assert settings.team_id == "vip"
    assert settings.skip_routing is True
    # What the conversation leaves out still comes from the channel.
    assert settings.default_bot_ids == ("faq-bot",)
    assert settings.welcome_message == "Welcome to support"


def test_no_settings_anywhere_means_plain_routing() -> None:
    settings = merge_settings({}, {})
    assert settings == ConversationSettings()
    assert settings.effective_assignee() is None
    assert not settings.skip_routing


def test_default_assignee_only_takes_effect_with_skip_routing() -> None:
    alone = merge_settings({}, parse_settings({"defaultAssignee": "faq-bot"}))
    assert alone.default_assignee == "faq-bot"
    assert alone.effective_assignee() is None
    both = merge_settings({}, parse_settings({"defaultAssignee": "faq-bot", "skipRouting": True}))
    assert both.effective_assignee() == "faq-bot"


def test_skip_routing_from_the_channel_lets_a_conversations_assignee_through() -> None:
    channel = parse_settings({"skipRouting": True, "defaultAssignee": "faq-bot"})
    assert merge_settings(channel, {}).effective_assignee() == "faq-bot"
    overridden = merge_settings(channel, parse_settings({"defaultAssignee": "alice"}))
    assert overridden.effective_assignee() == "alice"
    # A conversation may turn routing back on; the assignee then no longer applies.
    routed = merge_settings(channel, parse_settings({"skipRouting": "false"}))
    assert routed.effective_assignee() is None


def test_settings_are_immutable() -> None:
    settings = merge_settings(CHANNEL, {})
    with pytest.raises(ValidationError):
        settings.team_id = "other"
