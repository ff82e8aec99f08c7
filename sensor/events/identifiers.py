"""May a name taken from the traffic be shown? URL path segments, object keys, header names
and host labels reach events and metric labels only when `shown()` says so; everything
else is masked or replaced by a placeholder. Fail closed: a token is shown only when it is
shaped like a schema word and carries no personal data.

Personal data is recognised from the token alone, so it works where the classifier has no
context: an email, a phone number or a long run of digits, or a person's name written as
an identifier (`jane-doe`, `Doe, Jane`, `x-jane-doe`, `JaneDoe`, `janedoe`): a first name
beside a surname, a first name after a word that names people (`x-customer-jane`,
`/users/jane`), or words that spaCy reads as a person. The lexicons are detectors/names.py's.
"""
from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote

from detectors.context import PERSON_WORDS
from detectors.names import ALSO_WORDS, fold, lexicons

MAX_SHOWN = 64  # no schema word is longer; a longer token is data
# Schema words: identifiers with the separators schemas use (snake, kebab, dotted, `First Name`).
_SCHEMA_WORD = re.compile(r"[A-Za-z_$@][\w$@.: -]*")
_EMAIL = re.compile(r"[^@\s/]+@[^@\s/]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?:\+|00)\d[\d ().-]{6,20}\d|\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}|\d(?:[ .-]?\d){6,}")
_WORDS = re.compile(r"[^\W\d_]+")  # runs of letters, split again at camelCase humps below
_HUMP = re.compile(r"(?<=[a-z])(?=[A-Z])")
_PREFIXES = frozenset("x".split())  # x-jane-doe: the custom-header prefix is not part of the name


def decoded(token: str) -> str:
    """Percent-decoding undone until it changes nothing (jane.doe%2540example.com)."""
    for _ in range(3):
        text = unquote(token)
        if text == token:
            break
        token = text
    return token


@lru_cache(maxsize=65536)
def shown(token: str, after_person_word: bool = False) -> bool:
    """True when `token` may appear in outputs as it is: a schema word, not personal data."""
    text = decoded(token)
    return (len(text) <= MAX_SHOWN and _SCHEMA_WORD.fullmatch(text) is not None
            and kind(text, after_person_word) is None)


def kind(token: str, after_person_word: bool = False) -> str | None:
    """'email', 'phone' or 'pii' (a person's name) when `token` carries personal data; else None.
    `after_person_word`: the token follows a word that names people (/users/jane): there a
    lone first name or surname is a name too; elsewhere a lone first name must be capitalised."""
    if not token:
        return None
    text = decoded(token)
    if len(text) > 200:
        return "pii"  # too long to judge cheaply, and no schema word is this long
    found = _kind(text)
    if found is None and text.isalpha():
        first, last = lexicons()
        name = fold(text)
        lone_name = name not in ALSO_WORDS and (name in first or (after_person_word and name in last))
        if lone_name and (after_person_word or text.istitle()):
            return "pii"  # /users/jane, and a capitalised first name anywhere ('Jane')
    return found


@lru_cache(maxsize=65536)
def _kind(text: str) -> str | None:
    if "@" in text and _EMAIL.search(text):
        return "email"
    if sum(c.isdigit() for c in text) >= 7 and _PHONE.search(text):
        return "phone"
    words = [w for run in _WORDS.findall(text) for w in _HUMP.split(run) if w]
    while words and words[0].lower() in _PREFIXES:
        words = words[1:]
    if len(words) == 1:
        words = _run_together(words[0])  # janedoe
    return "pii" if _holds_name(words) else None


def _run_together(word: str) -> list[str]:
    """'janedoe' -> ['jane', 'doe'] where a first name and a surname make up the whole word."""
    if not 5 <= len(word) <= 30:
        return [word]
    first, last = lexicons()
    low = fold(word)
    for cut in range(4, len(low) - 2):  # four letters of first name and three of surname at least
        if low[:cut] in first and low[cut:] in last:
            return [word[:cut], word[cut:]]
    return [word]


def _holds_name(words: list[str]) -> bool:
    """A first name beside a surname (either order: 'Doe, Jane'), a first name after a word
    that names people ('customer jane'), or a person to spaCy where the lexicons half agree."""
    words = [w for w in words if len(w) >= 2][:8]
    if len(words) < 2:
        return False
    first, last = lexicons()
    low = [fold(w) for w in words]
    pairs = list(zip(low, low[1:]))
    if any((a in first and b in last) or (a in last and b in first) or (a in PERSON_WORDS and b in first and b not in ALSO_WORDS)
           for a, b in pairs):
        return True
    if not any((a in first and a not in ALSO_WORDS and len(b) >= 3) or (b in last and len(a) >= 3) for a, b in pairs):
        return False
    from detectors import nlp  # spaCy only for what the lexicons leave open

    title = " ".join(w[:1].upper() + w[1:].lower() for w in words)
    return any(label == "PERSON" and " " in title[start:end] for label, start, end in nlp.entities(title))
