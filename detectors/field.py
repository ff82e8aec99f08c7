"""The unit the detectors look at: one scalar value and where it sits.

Body decoders (sensor/payload.py) turn every part of an exchange into Fields.
Fields that share a parent object share a Record, so stage 2 can look at
sibling keys and values ("a name beside an address and a phone is a person").
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field as dc_field
from functools import lru_cache

# Split points of camelCase, PascalCase, acronyms (IPAddress -> ip address), digits.
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


@lru_cache(maxsize=65536)
def key_tokens(key: str) -> tuple[str, ...]:
    """'customerEmail' / 'customer_email' / 'Customer-Email' -> ('customer', 'email')."""
    return tuple(t.lower() for t in _CAMEL.findall(key))


@dataclass(slots=True)
class Key:
    """A normalized key name: its word tokens and its compact form ('dateofbirth')."""

    raw: str
    tokens: tuple[str, ...]
    compact: str
    token_set: frozenset

    @classmethod
    def of(cls, raw: str) -> "Key":
        return _key(raw)

    def has(self, words) -> bool:
        """True if any token of the key is one of `words`."""
        return not self.token_set.isdisjoint(words)

    def contains(self, phrases) -> bool:
        """True if the compact key contains one of `phrases` ('birthdate' in 'userbirthdate')."""
        return any(p in self.compact for p in phrases)


@lru_cache(maxsize=65536)
def _key(raw: str) -> Key:
    """Keys repeat endlessly in traffic: build each once. (Key objects are never mutated.)"""
    tokens = key_tokens(raw)
    return Key(raw, tokens, "".join(tokens), frozenset(tokens))


EMPTY_KEY = Key("", (), "", frozenset())


@dataclass(slots=True)
class Record:
    """The object (JSON dict, XML element, form, header block) that holds sibling fields."""

    keys: list[Key] = dc_field(default_factory=list)
    values: dict[str, str] = dc_field(default_factory=dict)  # compact key -> value
    parents: tuple[Key, ...] = ()  # keys from the root down to this record

    def add(self, key: Key, value: str) -> None:
        self.keys.append(key)
        self.values.setdefault(key.compact, value)

    def sibling_has(self, words, exclude: Key | None = None) -> bool:
        return any(k is not exclude and k.has(words) for k in self.keys)

    def parent_has(self, words) -> bool:
        return any(k.has(words) for k in self.parents)


@dataclass(slots=True)
class Field:
    part: str  # request.body, request.headers, ... (SPEC.md section 2)
    path: str  # JSONPath of the value inside its part
    key: Key  # the value's own key (EMPTY_KEY for a bare value)
    value: str
    record: Record
    is_number: bool = False
    nearby: str = ""  # for a span found in free text: the words around it, lower-case
