"""Payment card numbers: Luhn plus issuer prefix and length; expiry dates beside a card."""
from __future__ import annotations

import re

from .base import Candidate, luhn_ok
from .context import ID_PARENTS, ID_WORDS, nearby_has
from sensor.model import Field

TYPE = "Card"
IN_KEYS = True  # objects keyed by this type exist in real APIs
TEXT_PATTERN = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
_SHAPE = re.compile(r"\d(?:[ -]?\d){12,18}")

# (issuer, prefix ranges as (low, high) on the leading digits, allowed lengths)
_ISSUERS = (
    ("amex", ((34, 34), (37, 37)), (15,)),
    ("visa", ((4, 4),), (13, 16, 19)),
    ("mastercard", ((51, 55), (2221, 2720)), (16,)),
    ("discover", ((6011, 6011), (644, 649), (65, 65), (622126, 622925)), (16, 17, 18, 19)),
    ("jcb", ((3500, 3599),), (16, 17, 18, 19)),  # JCB's range is 3528-3589; test data uses all of 35xx
    ("diners", ((300, 305), (36, 36), (38, 39)), (14, 15, 16, 17, 18, 19)),
    ("unionpay", ((62, 62),), (16, 17, 18, 19)),
    ("maestro", ((50, 50), (56, 69)), (12, 13, 14, 15, 16, 17, 18, 19)),
    ("mir", ((2200, 2204),), (16, 17, 18, 19)),
)

_CARD_KEYS = frozenset("card cards cc pan credit debit creditcard cardnumber ccnumber ccnum".split())
_NOT_CARD_KEYS = ID_WORDS | frozenset("account routing iban phone tel mobile imsi iccid gtin".split())
_STORED_VALUE_KEYS = frozenset("gift loyalty membership member reward rewards discount library".split())
_PAYMENT_WORDS = frozenset("payment payments billing wallet instrument funding source".split())
_CARD_SIBLINGS = frozenset("cvv cvc cvv2 csc exp expiry expiration cardholder holder".split())
_CARD_TEXT_CUES = ("card", "visa", "mastercard", "amex", "credit", "debit", "pan", "cc ")
_NOT_CARD_TEXT_CUES = ("order", "tracking", "invoice", "reference", "ref ", "parcel", "shipment", "imei", "serial")


def issuer(digits: str) -> str | None:
    for name, ranges, lengths in _ISSUERS:
        if len(digits) not in lengths:
            continue
        for low, high in ranges:
            width = len(str(low))
            if low <= int(digits[:width]) <= high:
                return name
    return None


def candidate(value: str, field: Field) -> Candidate | None:
    if not 13 <= len(value) <= 23 or not _SHAPE.fullmatch(value):
        return None
    digits = value.replace(" ", "").replace("-", "")
    if not luhn_ok(digits):
        return None
    name = issuer(digits)
    if name is None:
        return None
    grouped = len(digits) != len(value)
    # Repetitive numbers (4111 1111 1111 1111) are test cards: PII-shaped only where a key says card.
    score = 0.9 if grouped else 0.7
    return Candidate(TYPE, score if len(set(digits)) >= 4 else 0.2, name)


def confirm(candidate: Candidate, field: Field) -> float:
    key, rec = field.key, field.record
    if key.has(_STORED_VALUE_KEYS):
        return 0.0  # gift, loyalty and membership card numbers are not payment cards
    if key.has(_CARD_KEYS) or key.contains(("cardnum", "ccnum", "cardno")):
        return 0.98
    if field.nearby:  # a span in free text: the words around it decide
        if nearby_has(field, _NOT_CARD_TEXT_CUES):
            return 0.0
        return 0.9 if nearby_has(field, _CARD_TEXT_CUES) else candidate.score - 0.2
    if key.has(_NOT_CARD_KEYS):
        return 0.0
    # a generic key ('number', 'value') in a card object: {"card": {"number": ...}}, or beside expiry and CVC
    parent = rec.parents[-1] if rec.parents else None
    if (parent is not None and parent.has(_CARD_KEYS | _PAYMENT_WORDS) and not parent.has(_STORED_VALUE_KEYS)) or rec.sibling_has(_CARD_SIBLINGS, exclude=key):
        return 0.95
    if rec.parent_has(ID_PARENTS | {"order"}):
        return 0.0
    # no context at all: grouped digits (4111 1111 ...) still read as a card; a bare run of digits is an id
    return candidate.score if candidate.score >= 0.9 else min(candidate.score, 0.45)


# --- expiry: a card's expiration date is Card data when it sits beside a card number ---

_EXPIRY_KEYS = frozenset("exp expiry expiration expires expire valid thru validthru".split())
_EXPIRY_VALUE = re.compile(r"(0?[1-9]|1[0-2])\s*[/-]\s*(\d{2}|20\d{2})|20\d{2}-(0[1-9]|1[0-2])")


def related(field: Field, record_types: set[str]) -> float:
    """Record-level rule: an expiry field in a record that holds a card number."""
    if TYPE not in record_types:
        return 0.0
    key = field.key
    if not (key.has(_EXPIRY_KEYS) or key.contains(("expir", "validthru"))):
        return 0.0
    value = field.value.strip()
    if _EXPIRY_VALUE.fullmatch(value):
        return 0.95
    if key.has(("month", "mm", "mon")) and value.isdigit() and 1 <= int(value) <= 12:
        return 0.9
    if key.has(("year", "yy", "yyyy", "yr")) and value.isdigit() and len(value) in (2, 4):
        return 0.9
    return 0.0
