"""Is a name taken from the traffic personal data? URL path segments, object keys, header
names and host labels reach events and metric labels as they are unless this says so.

Decided from the token's shape alone, so it works where the classifier has no context:
an email or phone number in the token, or a person's name written as an identifier
(`jane-doe`, `Jane_Doe`, `x-jane-doe`, `JaneDoe`). A name needs two words: a known first
name followed by a known surname, or a first name or surname that spaCy reads as a
person in the title-cased words. The lexicons are the first names and surnames of
Faker's 80-odd locales, loaded once on first use.
"""
from __future__ import annotations

import importlib
import pkgutil
import re
import unicodedata
from functools import lru_cache
from urllib.parse import unquote

_EMAIL = re.compile(r"[^@\s/]+@[^@\s/]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?:\+|00)\d[\d ().-]{6,20}\d|\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}")
_WORD_SPLIT = re.compile(r"[\s_.+~@-]+|(?<=[a-z])(?=[A-Z])")
_PREFIXES = frozenset("x".split())  # x-jane-doe: the custom-header prefix is not part of the name
# Surnames of the placeholder people of documentation and test data (John Doe, Joe Bloggs, Max
# Mustermann): names all the same, and in no locale's list of common surnames.
_PLACEHOLDER_SURNAMES = frozenset("doe roe bloggs mustermann musterfrau public sixpack".split())


def kind(token: str, after_person_word: bool = False) -> str | None:
    """'email', 'phone' or 'pii' (a person's name) when `token` carries personal data; else None.
    `after_person_word`: the token follows a word that names people (/users/jane): there a
    single first name or surname is a name too."""
    if not token or len(token) > 200:
        return None
    found = _kind(token)
    if found is None and after_person_word and token.isalpha():
        first, last = _lexicons()
        return "pii" if _fold(token) in first or _fold(token) in last else None
    return found


@lru_cache(maxsize=65536)
def _kind(token: str) -> str | None:
    text = unquote(token)
    if "@" in text and _EMAIL.search(text):
        return "email"
    if sum(c.isdigit() for c in text) >= 7 and _PHONE.search(text):
        return "phone"
    words = [w for w in _WORD_SPLIT.split(text) if w]
    while words and words[0].lower() in _PREFIXES:
        words = words[1:]
    if len(words) == 1 and words[0].isalpha():
        words = _run_together(words[0])  # janedoe
    return "pii" if _holds_name(words) else None


def _run_together(word: str) -> list[str]:
    """'janedoe' -> ['jane', 'doe'] where a first name and a surname make up the whole word."""
    if not 5 <= len(word) <= 30:
        return [word]
    first, last = _lexicons()
    low = _fold(word)
    for cut in range(2, len(low) - 1):
        if low[:cut] in first and low[cut:] in last:
            return [word[:cut], word[cut:]]
    return [word]


def _holds_name(words: list[str]) -> bool:
    """Two to five alphabetic words with a first name followed by a surname among them."""
    if not 2 <= len(words) <= 5 or not all(w.isalpha() and len(w) >= 2 for w in words):
        return False
    first, last = _lexicons()
    low = [_fold(w) for w in words]
    pairs = list(zip(low, low[1:]))
    if any(a in first and b in last for a, b in pairs):
        return True
    if not any(a in first or b in last for a, b in pairs):
        return False
    from detectors import nlp  # spaCy only for what the lexicons leave open

    title = " ".join(w[:1].upper() + w[1:].lower() for w in words)
    return any(label == "PERSON" and " " in title[start:end] for label, start, end in nlp.entities(title))


def _fold(word: str) -> str:
    """Lower case without accents: 'Björn' and 'bjorn' are one name."""
    return unicodedata.normalize("NFKD", word.lower()).encode("ascii", "ignore").decode()


@lru_cache(maxsize=1)
def _lexicons() -> tuple[frozenset, frozenset]:
    import faker.providers.person as locales

    first: set[str] = set()
    last: set[str] = set()
    for module in pkgutil.iter_modules(locales.__path__):
        provider = getattr(importlib.import_module(f"{locales.__name__}.{module.name}"), "Provider", None)
        for attr, into in (("first_names", first), ("first_names_male", first), ("first_names_female", first),
                           ("last_names", last)):
            names = vars(provider).get(attr) if provider is not None else None
            if isinstance(names, (list, tuple, set, frozenset, dict)):
                into.update(_fold(n) for n in names if isinstance(n, str) and len(n) >= 2)
    return frozenset(first), frozenset(last | _PLACEHOLDER_SURNAMES)
