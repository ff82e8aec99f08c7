"""Policy rules (SPEC.md section 7): which personal data may go where. A rule names data types or
a minimum sensitivity, selectors for the source (`from`, `unless_from`) and the destination
(`to`, `unless_to`), and an action. An event that matches a rule is a violation of it.

    policy:
      - name: card-data-to-psp-only
        data_types: [Card]
        to: {external: true}
        unless_to: {hosts: ["*.stripe.com"]}
        action: block            # alert (default) | redact | block

Rules are checked when the configuration is loaded: a bad one is an InputError naming the rule
and the field (the commands print it on one line and exit 2).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from detectors.sensitivity import TYPES

from .errors import InputError
from .geo.countries import expand
from .model import Event, Party

ACTIONS = ("alert", "redact", "block")
LEVELS = ("low", "medium", "high")
_SELECTOR_KEYS = ("workloads", "namespaces", "hosts", "countries", "external", "cross_border")
_IP_GLOB = re.compile(r"[0-9A-Fa-f.:*?\[\]!-]+")  # a host glob that could match an IP address
_RULE_KEYS = ("name", "data_types", "min_sensitivity", "from", "to", "unless_from", "unless_to", "action", "description")


@dataclass(frozen=True)
class Selector:
    """Every given criterion must hold; within a list, any entry may match."""

    workloads: tuple[str, ...] = ()  # globs over the workload name and 'namespace/name'
    namespaces: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()  # globs over the host name (and the IP)
    countries: frozenset = frozenset()
    external: bool | None = None
    cross_border: bool | None = None

    def matches(self, party: Party, cross_border: bool) -> bool:
        if self.workloads and not _any_glob(self.workloads, (party.name, party.workload)):
            return False
        if self.namespaces and not _any_glob(self.namespaces, (party.namespace,)):
            return False
        if self.hosts and not _any_glob(self.hosts, (party.host, party.ip)):
            return False
        if self.countries and party.country not in self.countries:
            return False
        if self.external is not None and bool(party.external) != self.external:
            return False
        return self.cross_border is None or cross_border == self.cross_border

    def could_match(self, party: Party, cross_border: bool | None, names_known: bool) -> bool | None:
        """matches() before the exchange is classified (or connected): True or False where every
        criterion can be judged, None where one cannot yet: workload names and namespaces while
        Kubernetes has not named the party (`names_known` false), hosts while the IP is unknown, a
        country or `external` not known (None), `cross_border` None."""
        verdicts = []
        if self.workloads:
            verdicts.append(_any_glob(self.workloads, (party.name, party.workload)) or (None if not names_known else False))
        if self.namespaces:
            verdicts.append(_any_glob(self.namespaces, (party.namespace,)) or (None if not names_known else False))
        if self.hosts:
            unknown_ip = party.ip is None and any(_IP_GLOB.fullmatch(g) for g in self.hosts)  # '10.1.*' may match it
            verdicts.append(_any_glob(self.hosts, (party.host, party.ip)) or (None if unknown_ip else False))
        if self.countries:
            verdicts.append(None if party.country is None else party.country in self.countries)
        if self.external is not None:
            verdicts.append(None if party.external is None else party.external == self.external)
        if self.cross_border is not None:
            verdicts.append(None if cross_border is None else cross_border == self.cross_border)
        return False if False in verdicts else None if None in verdicts else True


def _any_glob(globs, values) -> bool:
    return any(v and fnmatchcase(v.lower(), g.lower()) for v in values for g in globs)


@dataclass(frozen=True)
class Rule:
    name: str
    action: str = "alert"
    data_types: frozenset = frozenset()
    min_sensitivity: str | None = None
    source: Selector | None = None
    destination: Selector | None = None
    unless_source: Selector | None = None
    unless_destination: Selector | None = None

    def violated_by(self, event: Event) -> bool:
        if not event.data_types:
            return False
        if self.data_types and self.data_types.isdisjoint(event.data_types):
            return False
        if self.min_sensitivity and LEVELS.index(event.sensitivity or "low") < LEVELS.index(self.min_sensitivity):
            return False
        crossing = event.cross_border
        checks = ((self.source, event.source, True), (self.destination, event.destination, True),
                  (self.unless_source, event.source, False), (self.unless_destination, event.destination, False))
        return all(sel is None or sel.matches(party, crossing) == wanted for sel, party, wanted in checks)


def violations(rules: list[Rule], event: Event) -> list[dict]:
    """[{"rule": ..., "action": ...}] for each rule the event violates, in the policy's order."""
    return [{"rule": r.name, "action": r.action} for r in rules if r.violated_by(event)]


ENFORCING = ("redact", "block")  # actions the proxy takes itself (SPEC.md section 9)


def could_act(rules: list[Rule], source: Party, destination: Party, cross_border: bool | None = None,
              names_known: bool = True) -> list[Rule]:
    """The redact and block rules that an exchange between these parties could violate, judged before
    it is classified (so without its data types): the proxy classifies inline only requests one of
    them could act on. Conservative: a criterion that cannot be judged yet (Selector.could_match)
    counts as matching a `from`/`to` selector and as not matching an `unless_*` one."""
    out = []
    for rule in rules:
        if rule.action not in ENFORCING:
            continue
        checks = ((rule.source, source, True), (rule.destination, destination, True),
                  (rule.unless_source, source, False), (rule.unless_destination, destination, False))
        if all(_could_hold(sel, party, cross_border, names_known, wanted) for sel, party, wanted in checks):
            out.append(rule)
    return out


def _could_hold(selector: Selector | None, party: Party, cross_border, names_known: bool, wanted: bool) -> bool:
    if selector is None:
        return True
    verdict = selector.could_match(party, cross_border, names_known)
    return verdict is not False if wanted else verdict is not True


def acted(record: dict | None) -> bool:
    """True when the proxy's record of a request says it acted, would have (dry run), or failed to:
    such an exchange is never sampled away, nor its event throttled; it is the record of the action."""
    return bool(record) and bool(record.get("actions") or record.get("failure"))


def mark_enforced(violations: list[dict], enforcement: dict) -> list[dict]:
    """The violations of an exchange the proxy classified inline, each redact or block one saying
    whether the proxy acted on it: `"enforced": true|false`, `"dry_run": true` under
    enforcement.dry_run, `"enforced_as": "block"` where a redaction was turned into a block
    (enforcement.fail_closed). `enforcement` is the proxy's record (sensor/enforce/inline.py
    Outcome.record). A rule the proxy acted on but this classification does not list is added."""
    done = {rule: (action, enforced) for rule, action, enforced in enforcement.get("actions", ())}
    dry_run = {"dry_run": True} if enforcement.get("dry_run") else {}
    out = []
    for v in violations:
        if v["action"] in ENFORCING:
            # not acted on by rule: enforced only if the proxy blocked the request anyway (fail_closed)
            action, enforced = done.pop(v["rule"], (None, bool(enforcement.get("blocked"))))
            v = {**v, "enforced": enforced}
            if enforced and (action or "block") != v["action"]:
                v["enforced_as"] = action or "block"
            v.update(dry_run)
        out.append(v)
    for rule, (action, enforced) in done.items():  # the inline verdict saw what this one did not
        out.append({"rule": rule, "action": action, "enforced": enforced, **dry_run})
    return out


def parse(doc, where: str) -> list[Rule]:
    """The `policy` list of a configuration file, checked; `where` names the file in errors."""
    if doc is None:
        return []
    if not isinstance(doc, list):
        raise InputError(f"{where}: policy must be a list of rules")
    rules, names = [], set()
    for i, item in enumerate(doc):
        label = f"policy[{i}]"
        if not isinstance(item, dict):
            raise InputError(f"{where}: {label} must be a mapping")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"{where}: {label} needs a name")
        label = f"policy rule {name!r}"
        if name in names:
            raise InputError(f"{where}: {label} is defined twice")
        names.add(name)
        unknown = set(item) - set(_RULE_KEYS)
        if unknown:
            raise InputError(f"{where}: {label}: unknown field(s) {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(_RULE_KEYS)})")
        rules.append(_rule(item, name, f"{where}: {label}"))
    return rules


def _rule(item: dict, name: str, label: str) -> Rule:
    action = item.get("action", "alert")
    if action not in ACTIONS:
        raise InputError(f"{label}: action must be one of {', '.join(ACTIONS)}, not {action!r}")
    types = item.get("data_types") or []
    if not isinstance(types, list) or any(t not in TYPES for t in types):
        bad = types if not isinstance(types, list) else next(t for t in types if t not in TYPES)
        raise InputError(f"{label}: data_types: unknown data type {bad!r} (known: {', '.join(TYPES)})")
    level = item.get("min_sensitivity")
    if level is not None and level not in LEVELS:
        raise InputError(f"{label}: min_sensitivity must be one of {', '.join(LEVELS)}, not {level!r}")
    selectors = {k: _selector(item.get(k), f"{label}: {k}") for k in ("from", "to", "unless_from", "unless_to")}
    return Rule(name, action, frozenset(types), level, selectors["from"], selectors["to"],
                selectors["unless_from"], selectors["unless_to"])


def _selector(doc, label: str) -> Selector | None:
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise InputError(f"{label} must be a mapping with {', '.join(_SELECTOR_KEYS)}")
    unknown = set(doc) - set(_SELECTOR_KEYS)
    if unknown:
        raise InputError(f"{label}: unknown selector(s) {', '.join(sorted(unknown))} (known: {', '.join(_SELECTOR_KEYS)})")
    lists = {}
    for key in ("workloads", "namespaces", "hosts", "countries"):
        value = doc.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise InputError(f"{label}.{key} must be a list of names")
        lists[key] = tuple(value)
    try:
        countries = expand(lists["countries"])
    except ValueError as e:
        raise InputError(f"{label}.countries: {e}") from None
    flags = {}
    for key in ("external", "cross_border"):
        value = doc.get(key)
        if value is not None and not isinstance(value, bool):
            raise InputError(f"{label}.{key} must be true or false")
        flags[key] = value
    return Selector(lists["workloads"], lists["namespaces"], lists["hosts"], countries, **flags)
