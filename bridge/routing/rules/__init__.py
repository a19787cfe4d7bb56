"""Metadata rules: an ordered list per main channel; the first rule whose conditions hold wins.

Rules are data, never code: a condition names a fact (the region code, a customer field
or label, a metadata key) and one operator (equals, one_of, exists, prefix, or a number
range). A rule set is validated once at load, so a bad rule stops the service with a
message that names it. Its conditions are compiled into closures, and each rule's most
selective condition (equals, one_of, prefix, a number range, or a metadata key that must
exist) into an index, so a decision looks a few values up and checks only the rules that
could match.

Values compare the way someone writing YAML means them: text matches text exactly,
true/false match only booleans, and numbers match numbers *or numeric text*, because
chat metadata often arrives as text ("cart_total": "150"). Anything else never matches.

The package's modules, one job each: `schema` (what a rule may say), `predicates` (a
condition compiled to a test of the facts), `index` (the lookups that find candidate
rules) and `ruleset` (validation at load, and the decision).
"""

from bridge.routing.rules.ruleset import RuleMatch, RuleSet
from bridge.routing.rules.schema import Condition, Facts, Rule, RuleActions

__all__ = ["Condition", "Facts", "Rule", "RuleActions", "RuleMatch", "RuleSet"]
