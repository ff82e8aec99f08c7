"""People's names in fields; names in free text come from cue patterns and spaCy NER
(entity_confidence, called by detectors/classify.py).

A name key is not enough on its own ('name' of a product, a company, a file), so
stage 2 weighs the key, the parent object, the sibling keys and the value's shape,
and asks spaCy only when those do not settle it.
"""
from __future__ import annotations

import re

from . import nlp
from .names import ALSO_WORDS, fold, lexicons
from .base import Candidate
from .context import PERSON_WORDS, THING_SIBLINGS, THING_WORDS, owner, person_siblings
from sensor.model import Field

TYPE = "Person"
IN_KEYS = True  # objects keyed by this type exist in real APIs
ENTITY_LABELS = ("PERSON",)
# Self-introductions, sign-offs and role words before names in free text; spaCy finds the rest.
_CAPITALIZED = r"[^\W\d_a-zß-öø-ÿ][^\W\d_'’-]*(?:['’-][^\W\d_]+)*"  # not lower case: A-Z, À-Þ, and other scripts
_NAME = r"[A-Z][a-z'’-]+(?:\s+(?:(?:van|von|de|del|da|di|der|le|la)\s+)?[A-Z][a-z'’-]+){0,2}"
_CUES = (r"my name is|my name's|this is|i am|i'm|dear|hi|hello|thanks|thank you|regards|sincerely|cheers|signed|"
         r"customer|patient|client|passenger|guest|tenant|applicant|employee|mr\.?|mrs\.?|ms\.?|dr\.?")
TEXT_PATTERN = re.compile(
    rf"(?:\b(?i:{_CUES})[,:]?\s+)(?P<v>{_NAME})"
    rf"|\b(?P<w>{_NAME})(?=[\"']?\s*<[^<>\s@]+@)"  # a mailbox: Jane Doe <jane@example.com>, "Jane Doe" <...>
    # Two or three capitalized words anywhere, in any script that has capitals: the lexicons decide
    # (`lexicon_name`). A look-ahead, so that overlapping pairs are all tried ('with Sigrid Nyström').
    rf"|\b(?=(?P<x>{_CAPITALIZED}(?:\s+{_CAPITALIZED}\.?)?\s+{_CAPITALIZED}))"
)
_NOT_A_NAME = frozenset(
    "team all everyone there folks support customer customers sir madam friend friends guys "
    "again so sorry happy glad the we our your this that it just please there's".split()
)
# Capitalized words that follow 'Customer' or 'Hi' without being names: 'Customer Service Team'.
_NOT_NAME_WORDS = frozenset(
    "service services support success care team teams department desk center centre portal account "
    "accounts experience relations operations management manager id number record records data "
    "feedback review reviews satisfaction".split()
)
_CUE_BEFORE = re.compile(rf"\b(?:{_CUES})[,:]?\s+$")  # the words before a span (lower-cased)
_STRONG_CUES = ("my name is", "my name's", "i am", "i'm", "this is", "dear")

_NAME_TOKEN = re.compile(r"[^\W\d_][^\W\d_'’.-]*(?:['’.-][^\W\d_]+)*\.?")
_ORG_SUFFIX = frozenset(
    "inc inc. llc ltd ltd. gmbh corp corp. corporation co co. company ag sa s.a. plc bv nv "
    "group holdings technologies technology solutions labs systems software bank university "
    "foundation institute partners associates consulting services industries enterprises "
    "international global ventures capital studio studios media network networks store shop "
    "cafe restaurant hotel clinic hospital school college pharmacy motors airlines sl s.l. "
    "sas s.a.s. srl s.r.l. spa s.p.a. kg ohg ug e.k. s.com. s.l.n.e sons bros brothers "
    "hermanos filhos fils figli söhne associates asociados associados associati".split()
)
_ORG_JOINERS = re.compile(r",.* (?:and|&|y|e|et|und) |\b(?:and|&) (?:sons|co)\b", re.I)  # 'Turner, Sherman and Horn'
_NAME_PARTS = frozenset("first last full given family middle sur surname forename lastname firstname fullname givenname familyname maiden nick display legal preferred formatted text".split())
_TITLE_KEYS = frozenset("prefix suffix honorific honorificprefix honorificsuffix title salutation".split())  # 'Dr', 'Jr.' alone name nobody
# References to a resource that is a person: FHIR's {"reference": "Patient/7", "display": "Amy Shaw"},
# SCIM's {"$ref": "https://example.com/v2/Users/2819c223", "display": "Babs Jensen"}.
_PERSON_REFERENCE = re.compile(r"(?:^|/)(?:patient|practitioner|practitionerrole|relatedperson|person|people|users?|"
                               r"members?|contacts?|customers?|employees?)/[^/]+$")
_NAME_KEYS = frozenset("name names nombre nom vorname nachname apellido apellidos cognome prenom prénom".split())
_ROLE_KEYS = PERSON_WORDS - frozenset("billing shipping delivery profile me self user users account_holder".split())
_NOT_PERSON_KEYS = THING_WORDS | frozenset(
    "username login handle screen slug key path title subject label file host domain display_type "
    "street city country state town region trading".split()
)
_NAME_COMPACT = frozenset("firstname lastname fullname surname givenname familyname forename fname lname vorname "
                          "nachname apellido prenom nickname maiden maidenname mothersmaiden mothermaiden".split())
_VOTING_PERSON_WORDS = PERSON_WORDS - {"profile"}  # a business_profile is the business's
_ADDRESS_KEYS = frozenset("address addresses addr street line lines".split())
_TITLES = frozenset("mr mr. mrs mrs. ms ms. miss dr dr. prof prof. sir madam mx mx.".split())


_PARTICLES = frozenset("van von de der den da das do dos del della di du la le bin ibn al el ter ten y e st".split())


def looks_like_name(value: str) -> bool:
    words = value.split()
    if not 1 <= len(words) <= 5:
        return False
    if not all(_NAME_TOKEN.fullmatch(w) for w in words):
        return False
    capitals = sum(w[0].isupper() or w.lower() in _PARTICLES for w in words)
    return capitals >= max(1, len(words) - 1) and any(w[0].isupper() for w in words)


def candidate(value: str, field: Field) -> Candidate | None:
    v = value.strip()
    if not 2 <= len(v) <= 60 or not looks_like_name(v):
        return None
    return Candidate(TYPE, 0.4, v)


def lexicon_name(words: list[str]) -> bool:
    """A known first name followed by a known surname ('Sigrid Nyström', 'Janka M. Szász'), and the
    first name not an everyday word ('Will', 'Grant')."""
    first, last = lexicons()
    given, family = fold(words[0]), fold(words[-1].rstrip("."))
    return given in first and given not in ALSO_WORDS and family in last and len(family) >= 2


def organization_name(value: str) -> bool:
    words = [w.lower().strip(",!?;:") for w in value.split()]
    return any(w in _ORG_SUFFIX for w in words[1:]) or _ORG_JOINERS.search(value) is not None


def _context_vote(field: Field) -> int:
    """+1 when parents or siblings say person, -1 when they say thing, 0 when silent."""
    rec = field.record
    for parent in reversed(rec.parents):  # the nearest object that says decides: a vendor's contacts are people
        if parent.has(_VOTING_PERSON_WORDS):  # before things: a team_member is a person
            return 1
        if parent.has(THING_WORDS):
            return -1
    person = person_siblings(field)
    thing = sum(1 for k in rec.keys if k is not field.key and k.has(THING_SIBLINGS))
    return (person > thing) - (thing > person)


def _name_part(field: Field) -> bool:
    """'first_name', 'familyName', and {"name": {"given": ..., "family": ...}}."""
    key = field.key
    return key.compact in _NAME_COMPACT or key.has(_NAME_PARTS) and (
        key.has(_NAME_KEYS) or key.contains(("surname", "forename"))
        or bool(field.record.parents) and field.record.parents[-1].has(_NAME_KEYS))


def in_context(field: Field) -> bool:
    """A whole value is a name only under a name, holder or role key that no thing-key overrides."""
    key = field.key
    if key.has(_TITLE_KEYS) or key.has(_NOT_PERSON_KEYS) and not key.has(_NAME_PARTS - {"display", "nick", "text"}):
        return False
    return (_name_part(field) or key.has(_NAME_KEYS) or key.has(("holder", "cardholder", "beneficiary", "payee"))
            or key.has(_ROLE_KEYS) or key.has(("display",)))


def confirm(candidate: Candidate, field: Field) -> float:
    if field.nearby:  # a name in free text
        words = candidate.detail.split()
        before, after = field.nearby.split(" … ", 1)
        if words[0].lower() in _NOT_A_NAME or organization_name(candidate.detail) or any(w.lower() in _NOT_NAME_WORDS for w in words):
            return 0.0
        if _CUE_BEFORE.search(before):  # after 'my name is', 'Dear', 'Thanks,'
            strong = any(before.rstrip(" ,:").endswith(c) for c in _STRONG_CUES)
            return 0.85 if strong or len(words) >= 2 else 0.0
        if not (before.strip() or after.strip()) or _says_thing(field):
            return 0.0  # a whole value ('Martins Nascimento' as a company's name) is judged by its key
        return 0.8 if lexicon_name(words) and not organization_name(f"{candidate.detail} {after}") else 0.0
    key = field.key
    value = candidate.detail
    if organization_name(value) or not in_context(field) or any(w.lower() in _NOT_NAME_WORDS for w in value.split()):
        return 0.0  # 'Acme Ltd', 'API Team', 'Customer Support'
    if key.contains(("accountname",)) and field.record.parent_has(("bank", "bankaccount", "bankaccounts")):
        return 0.9  # a bank account's name is its holder's
    if _name_part(field):  # a given name or surname is a person's, a business's contact's too
        return 0.95 if _context_vote(field) >= 0 else 0.3  # e.g. a company's legal_name
    if not key.has(PERSON_WORDS) and owner(field) == "business":  # a shop's name; not its owner_name
        return 0.0
    if key.has(("display",)) and not key.has(_NAME_KEYS):  # the display of a reference: whom it refers to
        values = field.record.values
        if "code" in values or "system" in values:
            return 0.0  # a coded concept's display: 'Emergency Contact'
        reference = (values.get("reference") or values.get("$ref") or values.get("ref") or "").lower()
        if reference:
            return 0.92 if _PERSON_REFERENCE.search(reference) else 0.0
        parent = field.record.parents[-1:]
        return 0.9 if parent and parent[0].has(_VOTING_PERSON_WORDS) else _ask_ner(value)
    vote = _context_vote(field)
    if key.has(_NAME_KEYS) or key.has(("holder", "cardholder", "beneficiary", "payee")):
        if vote > 0 or key.has(_ROLE_KEYS) or key.contains(("cardholder", "holdername", "accountholder", "nameoncard")):
            return 0.92
        if vote < 0:
            return 0.0
        return _ask_ner(value)
    if key.has(_ROLE_KEYS) and len(value.split()) >= 2:
        # 'recipient': 'Ana Lima'. spaCy is unreliable on lone foreign names; the role key decides.
        return 0.85 if vote >= 0 else 0.0
    return 0.0


def _says_thing(field: Field) -> bool:
    """Free text under a thing's key or parent (a product's description, a brand)."""
    return field.key.has(_NOT_PERSON_KEYS) or field.record.parent_has(THING_WORDS)


def _ask_ner(value: str) -> float:
    """spaCy's view of a lone name-like value: PERSON yes, anything else no."""
    labels = nlp.entity_labels(value)
    if "PERSON" in labels:
        return 0.75
    if labels & {"ORG", "PRODUCT", "GPE", "FAC", "WORK_OF_ART", "EVENT", "NORP", "LOC"}:
        return 0.0
    words = value.split()
    return 0.6 if len(words) >= 2 and words[0].lower() in _TITLES else 0.0


def entity_confidence(text: str, start: int, end: int, field: Field) -> float:
    """A PERSON entity spaCy found in free text: is it a person's name?"""
    span = text[start:end]
    # the word after the entity too: spaCy often leaves 'LLC' or 'GmbH' outside it
    following = " ".join(text[start:end + 12].split()[: len(span.split()) + 1])
    if not looks_like_name(span) or organization_name(following) or (span.isupper() and len(span) <= 4):
        return 0.0
    if any(w.lower() in _NOT_NAME_WORDS for w in span.split()):
        return 0.0
    if _says_thing(field):
        return 0.0
    if field.key.has(_ADDRESS_KEYS) or field.record.parents[-1:] and field.record.parents[-1].has(_ADDRESS_KEYS):
        return 0.0  # '534 Erewhon St, PeasantVille': spaCy takes places in an address for people
    return 0.8
