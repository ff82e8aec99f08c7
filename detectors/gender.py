"""A person's sex or gender value; only under a gender key (`size: "M"` is not a gender)."""
from __future__ import annotations

import re

from .base import Candidate
from sensor.model import Field

TYPE = "Gender"
# A gender word in prose says little on its own; after a label it is a value: 'gender : male', 'Sex: F'.
# So is the word after an age in a clinical note: 'a 35-year-old male', 'this 79 year old woman'.
TEXT_PATTERN = re.compile(
    r"\b(?i:gender|sex|sexo|sesso|geschlecht|genre)\s*[:=]\s*"
    r"(?P<v>(?i:male|female|non-binary|nonbinary|other|unknown|m|f|x|homem|homen|mulher|masculino|femenino|feminino))\b"
    r"|\b\d{1,3}[- ]?(?i:years?|yrs?|yo)[- ](?i:old\s+)?(?P<a>(?i:male|female|man|woman|boy|girl|gentleman|lady))\b")

_VALUES = frozenset(
    """m f male female man woman boy girl nonbinary non-binary non_binary nb x other diverse
    d divers intersex trans transgender agender genderqueer genderfluid unspecified
    undisclosed prefer_not_to_say prefernottosay prefer-not-to-say unknown u männlich
    weiblich maennlich masculino femenino feminino masculina feminina masculin féminin feminin homme homem homen mulher
    femme hombre mujer mann frau maschio femmina uomo donna h""".split()
) | {"prefer not to say"}
_GENDER_KEYS = frozenset("gender sex geschlecht sexo sesso genero género sexe".split())
_NOT_GENDER_KEYS = frozenset("size preference preferred interest interested target audience".split())


def candidate(value: str, field: Field) -> Candidate | None:
    if len(value) > 20:
        return None
    v = value.strip().lower()
    if v in _VALUES:
        return Candidate(TYPE, 0.6, v)
    return None


def in_context(field: Field) -> bool:
    """Only a gender key makes 'f' or 'male' a person's gender."""
    key = field.key
    return not key.has(_NOT_GENDER_KEYS) and (key.has(_GENDER_KEYS) or key.contains(("gender", "geschlecht")))


def confirm(candidate: Candidate, field: Field) -> float:
    if field.nearby:  # found after its label or an age in free text
        return 0.9
    return 0.95 if in_context(field) else 0.0
