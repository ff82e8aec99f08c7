"""Country codes, and the groups a configuration may name instead of listing members."""
from __future__ import annotations

import pycountry

EU = frozenset("AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split())
EEA = EU | {"IS", "LI", "NO"}
GROUPS = {"EU": EU, "EEA": EEA}


def is_country(code: str) -> bool:
    return isinstance(code, str) and len(code) == 2 and pycountry.countries.get(alpha_2=code.upper()) is not None


def expand(codes) -> frozenset:
    """ISO codes with the groups replaced by their members: ['EEA', 'CH'] -> the EEA's 30 and CH.
    Raises ValueError naming the first entry that is neither."""
    out: set[str] = set()
    for code in codes:
        name = str(code).upper()
        if name in GROUPS:
            out |= GROUPS[name]
        elif is_country(name):
            out.add(name)
        else:
            raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code, EU or EEA")
    return frozenset(out)
