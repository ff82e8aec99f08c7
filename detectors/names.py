"""First names and surnames of Faker's 80-odd locales, loaded once on first use: evidence that
a word is a person's name, for free text (detectors/person.py) and for the names events mask
(sensor/events/identifiers.py)."""
from __future__ import annotations

import importlib
import pkgutil
import unicodedata
from functools import lru_cache

# Surnames of the placeholder people of documentation and test data (John Doe, Joe Bloggs, Max
# Mustermann): names all the same, and in no locale's list of common surnames.
PLACEHOLDER_SURNAMES = frozenset("doe roe bloggs mustermann musterfrau public sixpack".split())
# First names that are also everyday words of schemas and routes (`Max`, `/users/page`): a lone one
# is a word; beside a surname it is still a name (Mark Smith).
ALSO_WORDS = frozenset(
    """max min mark may will rose june april august summer winter autumn page price case link long king
    young grant chase hunter major rich love best faith hope grace joy ray dawn amber crystal ruby pearl
    jade iris lily violet ivy holly bill pat sue art don gene guy jack jean rod sky sunny storm river
    ocean rain angel star lane field park ford stone hill wood hall bell green brown white black gray
    grey gold silver penny sandy rusty dusty misty cherry candy honey sugar spring noel bay
    reed rock cliff glen dale dell vale miles earl baron duke prince princess queen iban server""".split())
# Faker's generic "en" first names are every given name in a census, `Price` and `Case` among them;
# the locales' own lists are curated.
_SKIP_FIRST_NAMES = frozenset({"en"})


def fold(word: str) -> str:
    """Lower case without accents: 'Björn' and 'bjorn' are one name."""
    return unicodedata.normalize("NFKD", word.lower()).encode("ascii", "ignore").decode()


@lru_cache(maxsize=1)
def lexicons() -> tuple[frozenset, frozenset]:
    import faker.providers.person as locales

    first: set[str] = set()
    last: set[str] = set()
    for module in pkgutil.iter_modules(locales.__path__):
        provider = getattr(importlib.import_module(f"{locales.__name__}.{module.name}"), "Provider", None)
        lists = (("last_names", last),) if module.name in _SKIP_FIRST_NAMES else (
            ("first_names", first), ("first_names_male", first), ("first_names_female", first), ("last_names", last))
        for attr, into in lists:
            names = vars(provider).get(attr) if provider is not None else None
            if isinstance(names, (list, tuple, set, frozenset, dict)):
                into.update(fold(n) for n in names if isinstance(n, str) and len(n) >= 2)
    return frozenset(first), frozenset(last | PLACEHOLDER_SURNAMES)
