"""A main channel's rule set: validated and compiled once, then `first_match` decides."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from bridge.errors import ConfigError, field_path
from bridge.routing.rules.index import FieldIndex, PresentIndex, selectivity
from bridge.routing.rules.predicates import Predicate, compile_condition
from bridge.routing.rules.schema import Facts, Rule


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """The rule that decided (`index` counts from 0, the explanation from 1) and why."""

    index: int
    rule: Rule
    explanation: str


class RuleSet:
    """A main channel's rules, validated and compiled once; `first_match` decides."""

    def __init__(
        self,
        main_channel: str,
        rules: Sequence[Rule | Mapping[str, Any]],
        *,
        channels: Collection[str],
        teams: Collection[str] | None = None,
    ) -> None:
        self._main = main_channel
        # A rule may always send a conversation to its main channel itself.
        own = frozenset(channels) | {main_channel}
        known_teams = None if teams is None else frozenset(teams)
        problems: list[str] = []
        parsed: list[Rule] = []
        names: dict[str, int] = {}
        for index, raw in enumerate(rules):
            label = self._label(index, raw)
            try:
                rule = Rule.model_validate(raw)
            except ValidationError as exc:
                problems.extend(
                    f"{label}: {field_path(e['loc'])}: {e['msg']}"
                    if e["loc"]
                    else f"{label}: {e['msg']}"
                    for e in exc.errors()
                )
                continue
            if rule.name in names:
                problems.append(f"{label}: name: repeats rules[{names[rule.name]}]")
            names.setdefault(rule.name, index)
            target = rule.then.channel
            if target is not None and target not in own:
                known = ", ".join(repr(name) for name in sorted(own))
                problems.append(
                    f"{label}: then.channel: {target!r} is not a channel of {main_channel!r}"
                    f" (known: {known})"
                )
            team = rule.then.team_id
            if known_teams is not None and team is not None and team not in known_teams:
                problems.append(f"{label}: then.team_id: unknown team {team!r}")
            parsed.append(rule)
        if problems:
            raise ConfigError("; ".join(problems))
        self._rules = tuple(parsed)
        self._compile()

    def _label(self, index: int, raw: Rule | Mapping[str, Any]) -> str:
        name = raw.name if isinstance(raw, Rule) else None
        if isinstance(raw, Mapping) and isinstance(raw.get("name"), str) and raw["name"].strip():
            name = raw["name"].strip()
        return f"channels.{self._main}.rules[{index}] ({name or 'unnamed'})"

    def _compile(self) -> None:
        indexes: dict[str, FieldIndex] = {}
        present = PresentIndex()
        unindexed: list[int] = []
        checks: list[tuple[Predicate, ...]] = []
        for position, rule in enumerate(self._rules):
            # Index the most selective condition; only the others are checked per call.
            ranked = [
                (rank, i)
                for i, condition in enumerate(rule.when)
                if (rank := selectivity(condition)) is not None
            ]
            chosen = min(ranked)[1] if ranked else None
            if chosen is None:
                unindexed.append(position)
            elif rule.when[chosen].exists:
                present.add(rule.when[chosen], position)
            else:
                field = rule.when[chosen].field
                indexes.setdefault(field, FieldIndex(field)).add(rule.when[chosen], position)
            checks.append(
                tuple(compile_condition(c) for i, c in enumerate(rule.when) if i != chosen)
            )
        for index in indexes.values():
            index.build_slots()
        self._indexes: tuple[FieldIndex | PresentIndex, ...] = (
            (*indexes.values(), present) if present.by_key else tuple(indexes.values())
        )
        self._unindexed = tuple(unindexed)
        self._checks = tuple(checks)
        # Matches are built once: a decision returns a shared, immutable object.
        self._matches = tuple(
            RuleMatch(i, rule, f'rule {i + 1} "{rule.name}" {rule.describe()}')
            for i, rule in enumerate(self._rules)
        )

    @property
    def main_channel(self) -> str:
        """The main channel these rules belong to."""
        return self._main

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules, in the order they are tried."""
        return self._rules

    def __len__(self) -> int:
        return len(self._rules)

    def first_match(self, facts: Facts) -> RuleMatch | None:
        """The first rule, in order, whose conditions all hold; None when no rule does."""
        found: set[int] = set()
        for index in self._indexes:
            index.collect(facts, found)
        checks = self._checks
        first = len(checks)  # the first indexed candidate that holds; past the end: none
        for position in sorted(found):
            for check in checks[position]:
                if not check(facts):
                    break
            else:
                first = position
                break
        # Indexed and unindexed rules are disjoint, so rather than merge and sort the two,
        # an unindexed rule is tried only when it comes before that candidate.
        for position in self._unindexed:
            if position > first:
                break
            for check in checks[position]:
                if not check(facts):
                    break
            else:
                return self._matches[position]
        return self._matches[first] if first < len(checks) else None
