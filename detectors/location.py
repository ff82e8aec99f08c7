"""Where a person lives or can be reached: address parts and coordinates.

Cities, states and countries are ordinary words, so the key decides, and for the
ambiguous keys (state, region, country, line1) the record must look like an address.
"""
from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
import pycountry

from .base import Candidate
from .context import ID_WORDS, PERSON_WORDS, QUANTITY_WORDS, nearby_has, owner, person_siblings
from sensor.model import Field, Key

TYPE = "Location"
ENTITY_LABELS = ("GPE", "LOC", "FAC")
# Street addresses in free text: "42 Baker Street", "1600 Amphitheatre Pkwy", "Hauptstraße 5".
_STREET_SUFFIX = (  # the common USPS and Royal Mail street suffixes
    r"street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|"
    r"terrace|ter|parkway|pkwy|highway|hwy|square|sq|close|crescent|circle|cir|trail|trl|alley|"
    r"plaza|plz|row|walk|mews|gardens|gdns|grove|hill|hills|heights|park|ridge|view|valley|glen|"
    r"station|corner|crossing|xing|point|pt|pike|loop|bend|branch|brook|creek|cove|dale|estates|"
    r"falls|ferry|field|fields|forest|fork|harbor|haven|island|junction|knoll|lake|lakes|landing|"
    r"light|lights|manor|meadow|meadows|mill|mills|mission|mount|mountain|orchard|pass|path|"
    r"pines|port|prairie|ranch|rapids|rest|route|shoal|shoals|shore|shores|spring|springs|"
    r"spur|summit|throughway|trace|track|tunnel|turnpike|union|vista|village|ville|wall|wells|"
    r"stravenue|cape|causeway|center|centre|cliff|cliffs|common|courts|curve|divide|expressway|"
    r"extension|freeway|green|inlet|isle|key|keys|lock|locks|lodge|motorway|neck|oval|overpass|"
    r"parks|radial|ramp|ridge|run|skyway|squares|streets|underpass|way|ways|well|flat|flats|garden|"
    r"bypass|hollow|grove|burg|camp|canyon|club|course|dam|ford|fort|gateway|harbour|haven|"
    r"mall|meadow|motorway|orchard|pine|plain|plains|ranch|ridge|river|shoal|stream|summit|"
    r"viaduct|vista|wynd|rise|quay|parade|esplanade|promenade|embankment|broadway"
)
# Country names, for addresses in free text that end in one ('... Apt. 615 Moosleerau Switzerland').
_COUNTRY_NAMES = sorted({name for country in pycountry.countries for name in
                         (country.name, getattr(country, "common_name", None), getattr(country, "official_name", None))
                         if name and "," not in name and "(" not in name} | {"USA", "UK", "England", "Scotland", "Wales"},
                        key=len, reverse=True)
_COUNTRY = "|".join(re.escape(name) for name in _COUNTRY_NAMES)
# A house number and a capitalized street name, then (over up to five short lines) a second part
# (a comma, a new line or another number) and a country, and maybe its postcode after it. Tried
# only on texts that name a country: its windows are costly on long texts full of numbers.
_COUNTRY_WORD = re.compile(rf"\b(?:{_COUNTRY})\b")
_ADDRESS_TO_COUNTRY = re.compile(
    rf"(?<![\w.,/-])(?P<c>\d{{1,6}}[A-Za-z]?\s+(?:\d{{1,5}}\s+)?[^\W\d_a-z][^\n?!:;]{{0,80}}?(?:[,\n]|\s\d{{1,6}}\b)"
    rf"(?:[^\n?!:;]{{0,60}}?\n){{0,4}}[^\n?!:;]{{0,60}}?\b(?:{_COUNTRY})\b(?:\.?[ \t]*\d{{3,6}}\b)?)")
_PATTERN = re.compile(
    rf"(?<![\w:.,/-])\d{{1,6}}[A-Za-z]?\s+(?:[A-Z][\w'.-]*\s+){{1,4}}(?i:{_STREET_SUFFIX})s?\b\.?(?:\s+(?:Suite|Apt\.?|Unit|#)\s*\w+)?"
    r"(?:,\s+[A-Z][\w'-]+(?:\s[A-Z][\w'-]+){0,2})?"
    r"|\b(?i:zip|postal|post)[ -]?(?i:code)(?:\s+(?i:is))?\s*[:=]?\s*(?P<z>[A-Z0-9][A-Z0-9 -]{1,8}[A-Z0-9])\b"
    r"|\b[A-ZÄÖÜ][\wäöüß-]*(?i:straße|strasse|str\.|weg|platz|gasse|allee)\s+\d{1,4}[a-z]?\b"
    r"|\b(?i:rue|avenue|boulevard|calle|rua|avenida)\s+(?:d[eoa]s?\s+|la\s+|du\s+)?[A-Z][\w'.-]+(?:\s+[A-Z][\w'.-]+){0,3}"
    # whatever follows 'my address is', 'sent to', 'lives in', up to the end of the sentence: street
    # formats of every country ('50541 Mlýnská 1540, Trancoso'), post boxes, multi-line blocks
    r"|(?i:\b(?:(?:my |new |the |primary |secondary |home |billing |shipping |mailing )?address(?:es)?"
    r"(?: is| to| to the same)?\s*[:=]?|(?:be |been )?sent to|send (?:it |them |this )?to|ship(?:ped)? (?:it |them )?to"
    r"|deliver(?:ed|y)? (?:it |them )?to|lives? (?:at|on|in)|living (?:at|on|in)|(?:i|we|i've|we've|just|recently) moved to|resides? (?:at|in))\s+)"
    r"(?P<a>(?!\d{1,4}[/.-]\d{1,2}[/.-])(?:\d|[A-ZÀ-Þ])[^?!]{2,160}?)(?=\s*(?:[?!]|\.?\s*$|\.\s+[A-Z][a-z]+\s+[a-z]|\bfor\b|\bplease\b|\n\s*\n))",
)


class _Patterns:
    """The address patterns as one TEXT_PATTERN (detectors/base.py): street shapes and cues always,
    addresses that end in a country where the text names one."""

    def finditer(self, text: str):
        yield from _PATTERN.finditer(text)
        if _COUNTRY_WORD.search(text):
            yield from _ADDRESS_TO_COUNTRY.finditer(text)


TEXT_PATTERN = _Patterns()

_STREET_KEYS = frozenset(
    "street streetaddress address addr addresses road building house housenumber apartment apt suite flat premise "
    "strasse straße calle direccion adresse anschrift indirizzo endereco rue".split()
)
_UNIT_KEYS = frozenset("line building house apartment apt suite flat number unit premise".split())  # parts only an address gives meaning
_CITY_KEYS = frozenset("city town locality municipality suburb village ciudad ort stadt ville citta cidade district neighborhood neighbourhood".split())
_POSTAL_KEYS = frozenset("zip zipcode postal postcode postalcode plz cep pincode".split())
_REGION_KEYS = frozenset("state province region county prefecture canton territory".split())
_COUNTRY_KEYS = frozenset("country nation".split())
_COORD_KEYS = frozenset("lat latitude lng lon long longitude coordinates coords geo geolocation latlng latlon gps".split())
_PLACE_KEYS = frozenset("location residence home hometown whereabouts".split())
_ADDRESS_CONTEXT = _STREET_KEYS | _CITY_KEYS | _POSTAL_KEYS | frozenset("shipping billing delivery mailing home residence residential postal".split())
_NOT_ADDRESS_TOKENS = frozenset(
    "email mail ip mac web url wallet server host remote ipv4 ipv6 bitcoin eth ethereum crypto "
    "memory hardware contract type kind verified verification status format count validated "
    "valid lookup license licence lic dl issuing issuer plate registration jurisdiction check result "
    "match birth nationality citizenship".split()  # country_of_birth, nationality_country_code: not where one lives
)
_STATUS_WORDS = frozenset(
    "active inactive pending open closed done new enabled disabled on off true false ok "
    "error failed success running stopped paused completed cancelled canceled draft "
    "approved rejected archived unknown none null idle ready match nomatch no_match partial_match "
    "partialmatch no_data nodata verified unverified pass passed fail".split()
)
_POSTAL_SHAPE = re.compile(r"[A-Z0-9][A-Z0-9 -]{1,8}[A-Z0-9]", re.I)
_COORD_PAIR = re.compile(r"\s*(-?\d{1,3}\.\d+)\s*[,; ]\s*(-?\d{1,3}\.\d+)\s*")
_REGION_CODE = re.compile(r"[a-z]{2}-[a-z]+-\d|[a-z]+-[a-z]+\d")  # us-east-1, europe-west1: cloud regions
_BUSINESS_TEXT_CUES = ("our office", "our offices", "our store", "our shop", "our headquarters", "we are located", "office is at",
                      "offices are at", "office is located", "offices are located", "headquartered",
                      "our address", "visit us", "our warehouse", "hospital", "clinic", "find them at",
                      "their office", "meet ", "meeting")
_SENDING_CUES = ("sent to", "send it to", "send them to", "send this to", "send to", "ship it to", "ship to",
                 "shipped to", "deliver to", "delivered to", "delivery to")
LIVE_CUES = ("live", "living", "lives", "moved to", "address", "ship to", "deliver", "reside", "located at", "home", "send it to", "mail it to",
             "i'm in", "i am in", "i'm at", "i am at", "grew up in", "moved here from", "moved from", "staying in", "zip", "postal")


def candidate(value: str, field: Field) -> Candidate | None:
    v = value.strip()
    if not v or len(v) > 200 or "@" in v or "://" in v:
        return None
    return Candidate(TYPE, 0.3, None)


def _address_record(field: Field) -> bool:
    """The field sits in, or beside, an address: parent key or sibling keys say so."""
    rec = field.record
    if rec.parent_has(_ADDRESS_CONTEXT | _PLACE_KEYS | {"address", "addr", "adresse", "direccion"}):
        return True
    siblings = sum(1 for k in rec.keys if k is not field.key and (k.has(_STREET_KEYS | _CITY_KEYS | _POSTAL_KEYS) or k.contains(("zipcode", "postcode", "postalcode"))))
    return siblings >= 1


def _kind(field: Field) -> str | None:
    key = field.key
    if key.has(QUANTITY_WORDS):
        return None  # total_line_items_price: an amount, whatever else the key says
    kind = _key_kind(key.raw)
    if kind is None and key.has(("line", "lines")) and not key.has(_NOT_ADDRESS_TOKENS) and _address_record(field):
        return "street"  # FHIR's address.line[]
    return kind


@lru_cache(maxsize=65536)
def _key_kind(raw: str) -> str | None:
    """What part of an address a key names, from the key alone."""
    key = Key.of(raw)
    if key.has(_NOT_ADDRESS_TOKENS) or key.has(ID_WORDS - {"house"}):
        return None
    if key.has(_COORD_KEYS):
        return "coord"
    if key.has(_POSTAL_KEYS) or key.contains(("zipcode", "postcode", "postalcode")):
        return "postal"
    if key.has(_CITY_KEYS) or key.contains(("adminarea2",)):  # admin_area_2: the city
        return "city"
    if key.has(_STREET_KEYS) or key.contains(("street", "address")):
        return "street"
    if key.has(("line",)) and any(t.isdigit() for t in key.tokens):
        return "street"  # line1, addressLine2
    if key.has(_REGION_KEYS) or key.contains(("adminarea1",)):  # PayPal's admin_area_1: the state
        return "region"
    if key.has(_COUNTRY_KEYS):
        return "country"
    if key.has(_PLACE_KEYS):
        return "place"
    return None


def _coordinate(field: Field) -> bool:
    v = field.value.strip()
    if _COORD_PAIR.fullmatch(v):
        a, b = (float(x) for x in _COORD_PAIR.fullmatch(v).groups())
        return abs(a) <= 180 and abs(b) <= 180
    try:
        x = float(v)
    except ValueError:
        return False
    if not (abs(x) <= 180 and "." in v):
        return False
    if field.key.has(("lat", "latitude")):
        return abs(x) <= 90
    return True


def in_context(field: Field) -> bool:
    """A whole value is a place only under a key that names a part of an address or a place."""
    return _kind(field) is not None


def confirm(candidate: Candidate, field: Field) -> float:
    if field.nearby:  # a street address found in free text: not in a business's own fields
        if owner(field) in ("business", "thing") or nearby_has(field, _BUSINESS_TEXT_CUES):
            return 0.0
        if nearby_has(field, _SENDING_CUES) and not any(c.isdigit() for c in field.value):
            return 0.0  # 'send it to John': a name; 'send it to 12 Elm St': a place
        return 0.85 if any(c.isdigit() for c in field.value) or nearby_has(field, LIVE_CUES) else 0.6
    whose = owner(field)
    if not in_context(field) or whose == "business" or whose == "thing" and _kind(field) != "coord":
        return 0.0  # a store's address is not a person's; a device's position is its user's
    if field.part == "request.path" and (any(c.isdigit() for c in field.value) or not field.value[:1].isupper()):
        return 0.0  # /addresses/207119551, /Location/amb: the segment after a collection is an id
    kind = _kind(field)
    v = field.value.strip()
    low = v.lower()
    if kind == "coord":
        return 0.9 if _coordinate(field) else 0.0
    if field.is_number and kind != "postal":
        return 0.0
    if low in _STATUS_WORDS and not (v.isupper() and len(v) <= 3) or _REGION_CODE.fullmatch(low):  # but ON, OK: provinces
        return 0.0
    if kind == "postal":
        return 0.9 if _POSTAL_SHAPE.fullmatch(v) and any(c.isdigit() for c in v) else 0.0
    if kind == "street":
        unit = field.key.has(_UNIT_KEYS) and not field.key.contains(("street", "address", "addr"))
        if unit:  # 'line1', 'house_number': an address only inside an address
            return 0.9 if _address_record(field) and any(c.isalnum() for c in v) else 0.0
        return 0.9 if any(c.isalpha() for c in v) else 0.0
    if not any(c.isalpha() for c in v):
        return 0.0
    if kind in ("city", "place"):
        return 0.9
    # region and country words are common elsewhere: require an address around them,
    # or a person's record and a value that is a real region or country code
    if _address_record(field):
        return 0.85
    rec = field.record
    if (rec.parents and rec.parents[-1].has(("license", "licence", "dl", "driver"))) or rec.sibling_has(("dl", "driver", "drivers", "license", "licence")):
        return 0.0  # {"driver_license": "...", "state": "NY"}: the license's issuing state
    if field.key.has(("code",)) and any(k is not field.key and k.contains(("phone", "msisdn")) for k in rec.keys):
        return 0.0  # {"phone_number": "+1...", "country_code": "US"}: the number's country
    if rec.parents and rec.parents[-1].has(("bank", "account", "accounts", "card", "cards", "instrument")):
        return 0.0  # a bank account's or a card's country, not where its holder lives
    if _person_record(field) and (v.upper() in _US_STATES or v.upper() in phonenumbers.SUPPORTED_REGIONS):
        return 0.7
    return 0.0


_US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM "
    "NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR GU VI".split()
)


def _person_record(field: Field) -> bool:
    return field.record.parent_has(PERSON_WORDS) or person_siblings(field) >= 2


def entity_confidence(text: str, start: int, end: int, field: Field) -> float:
    """A place spaCy found in free text: a person's location only when the words before say so."""
    before = text[max(0, start - 40):start].lower()
    if any(cue in before for cue in _BUSINESS_TEXT_CUES):
        return 0.0
    return 0.75 if any(cue in before for cue in LIVE_CUES) else 0.0
