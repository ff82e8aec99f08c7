"""Phone numbers, national and international, parsed and validated with phonenumbers.

The region for national formats comes from context: a country or locale field
beside the number, else the number's own prefix, else a list of common regions.
"""
from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

from .base import Candidate
from .context import ID_PARENTS, ID_WORDS, QUANTITY_WORDS, nearby_has
from sensor.model import Field

TYPE = "Phone"
IN_KEYS = True  # objects keyed by this type exist in real APIs
CANDIDATE_READS_FIELD = True  # a bare run of digits is a number only under a phone key or cue words
TEXT_PATTERN = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d ().-]{5,18}\d(?![\w])")
_SHAPE = re.compile(r"(?:\+|00)?[\d ().\-/]{6,24}(?:\s*(?:x|ext\.?|#)\s*\d{1,6})?", re.I)
_FALLBACK_REGIONS = ("US", "GB", "DE", "FR", "IN", "BR", "ES", "IT", "NL", "AU", "CA", "MX", "JP", "PL", "SE", "CH", "IE", "ZA")
_PHONE_KEYS = frozenset(
    "phone phones tel telephone telefon telefono telefone mobile mobil cell cellphone fax msisdn "
    "whatsapp sms landline handy contactnumber callback".split()
)
_NOT_PHONE_KEYS = ID_WORDS | QUANTITY_WORDS | frozenset(
    "zip postal postcode ssn account acct routing iban card pan ein timestamp time date epoch "
    "created updated code pin otp version year identity national personnummer cpr tax vat".split()
)
_PHONE_TEXT_CUES = ("call", "phone", "tel", "mobile", "cell", "text me", "reach me", "whatsapp", "fax", "contact", "number",
                    "message", "sms", "dial", "answering", "ring")
_NOT_PHONE_TEXT_CUES = ("order", "tracking", "invoice", "account", "reference", "ref", "ssn", "card", "license", "licence",
                        "passport", "social security")
# Words that name a phone itself: beside an identifier's words ('card number 1234567 and phone
# number +55 ...') they still say phone; 'number' alone does not.
_OWN_PHONE_CUES = tuple(c for c in _PHONE_TEXT_CUES if c not in ("contact", "number", "message", "answering"))
_GENERIC_VALUE_KEYS = frozenset("value number num e164 national international formatted display data".split())
# Keys that name the ends of a call or message (Twilio's To/From, a binding's address): an E.164
# number there is a phone number.
_ADDRESSING_KEYS = frozenset("to from forwarded caller called callee recipient sender originator destination address".split())
_SCHEME = re.compile(r"(?:whatsapp|tel|sms|callto|phone):", re.I)  # whatsapp:+14155550100, tel:+44...
# Shapes that phonenumbers may accept somewhere but are dates, IPs or SSNs.
_NOT_PHONE_SHAPE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|\d{1,3}(\.\d{1,3}){3}|\d{3}-\d{2}-\d{4}")


def region_hints(field: Field) -> list[str]:
    """Regions suggested by sibling fields: country codes and locales like 'de-DE' or 'en_GB'."""
    hints = []
    for compact, value in field.record.values.items():
        if not any(k in compact for k in ("country", "locale", "region", "lang")):
            continue
        v = value.strip()
        if "-" in v or "_" in v:
            v = v.replace("_", "-").rsplit("-", 1)[-1]
        if len(v) == 2 and v.isalpha():
            hints.append(v.upper())
    return hints


def candidate(value: str, field: Field) -> Candidate | None:
    shape = _shape(value)
    if shape is None:
        return None
    text, formatted, international = shape
    phone_key = _keyed(field)
    if not (phone_key or international or field.nearby or formatted):
        return None  # a bare run of digits is a phone number only where a key or the words around say so
    if international:
        regions = (None,)
    elif phone_key:
        regions = (*region_hints(field), *_FALLBACK_REGIONS)
    elif field.nearby and nearby_has(field, _PHONE_TEXT_CUES):  # 'call me on 020 7946 0958': any common plan
        regions = (*region_hints(field), *_FALLBACK_REGIONS)
    else:  # without a phone key, a national number must fit the context's region or the US plan
        regions = (*region_hints(field), "US")
    valid, possible = _parse(text, regions)
    if valid is not None:
        return Candidate(TYPE, 0.9 if international else (0.7 if formatted else 0.4), valid)
    if possible and phone_key:
        # (555) 123-4567 and other unassigned ranges: a real number shape under a phone key
        return Candidate(TYPE, 0.2, None)
    return None


@lru_cache(maxsize=65536)
def _shape(value: str) -> tuple[str, bool, bool] | None:
    """(text to parse, formatted, international) when the value is shaped like a phone number.
    It depends on the value alone and values repeat: worked out once per value."""
    scheme = _SCHEME.match(value)
    if scheme:
        value = value[scheme.end():]
    if not 6 <= len(value) <= 32 or not _SHAPE.fullmatch(value):
        return None
    if not 7 <= sum(c.isdigit() for c in value) <= 15:
        return None
    text = value.strip()
    if _NOT_PHONE_SHAPE.fullmatch(text):
        return None
    international = text.startswith(("+", "00"))
    if text.startswith("00"):
        text = "+" + text[2:]
    return text, any(c in value for c in " ()-."), international


@lru_cache(maxsize=65536)
def _parse(text: str, regions: tuple) -> tuple[str | None, bool]:
    """(the first region of `regions` where the number is valid, or None; whether it is at least
    possible somewhere). phonenumbers is the costly part of this detector: once per number and regions."""
    possible = False
    for region in regions:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return region or "international", True
        possible = possible or phonenumbers.is_possible_number(number)
    return None, possible


def _keyed(field: Field) -> bool:
    """A phone key, or an E.164 number under To/From or behind a tel: scheme, which say as much."""
    if _is_phone_key(field):
        return True
    value = field.value.lstrip()
    scheme = _SCHEME.match(value)
    return (value[scheme.end():] if scheme else value).startswith("+") and bool(scheme or field.key.has(_ADDRESSING_KEYS))


def _is_phone_key(field: Field) -> bool:
    """The key says phone, or a generic key ('value', 'number') sits in a phone object:
    {"phoneNumbers": [{"value": ...}]}, FHIR's {"system": "phone", "value": ...}."""
    key = field.key
    if key.has(_PHONE_KEYS) or key.contains(("phone", "mobile", "telephon", "cellnum")):
        return True
    if not key.has(_GENERIC_VALUE_KEYS):
        return False
    rec = field.record
    return rec.parent_has(_PHONE_KEYS | {"telecom"}) and not rec.parent_has(ID_PARENTS) or any(
        v.strip().lower() in ("phone", "mobile", "sms", "fax", "cell", "tel") for v in rec.values.values())


def confirm(candidate: Candidate, field: Field) -> float:
    key = field.key
    if _keyed(field):
        return 0.97 if candidate.score > 0.2 else 0.9
    if field.nearby:  # a span in free text: the words around it decide
        if nearby_has(field, _NOT_PHONE_TEXT_CUES) and not nearby_has(field, _OWN_PHONE_CUES):
            return 0.0  # 'account number 12345678', 'driver's license number 6940579'
        if nearby_has(field, _PHONE_TEXT_CUES):
            return 0.9
        return 0.75 if candidate.score >= 0.9 else 0.7 if candidate.score >= 0.7 else 0.0  # formatted and valid
    if key.has(_NOT_PHONE_KEYS) or field.record.parent_has(ID_PARENTS):
        return 0.0
    if field.is_number:
        return 0.0
    # No key evidence: only an unmistakably formatted number counts.
    return 0.7 if candidate.score >= 0.7 else 0.0
