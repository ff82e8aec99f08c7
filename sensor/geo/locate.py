"""The country of an event's source and destination: a configured workload's, the cluster's for
other internal parties (configured, or the node's cloud region), and for external addresses the
registry data of `iptocc` (the RIRs' delegation files, shipped inside the package: no download
at run time). Registration is not geolocation: an anycast or CDN address gets its owner's
country, which is also what a data-transfer assessment asks about the recipient."""
from __future__ import annotations

from functools import lru_cache

import iptocc

from ..model import Party


@lru_cache(maxsize=65536)  # destinations repeat with every exchange
def country_of_ip(ip: str | None) -> str | None:
    if not ip:
        return None
    try:
        code = iptocc.country_code(ip)
    except (ValueError, TypeError):
        return None
    return code if code and len(code) == 2 and code.isalpha() else None


class Locator:
    def __init__(self, config):
        self.config = config
        self.by_workload = {w.name: w.country for w in config.workloads if w.country}

    def country(self, party: Party, external: bool) -> str | None:
        if party.name in self.by_workload:
            return self.by_workload[party.name]
        if not external:
            return self.config.geo_country  # the cluster's, when configured or read from the node
        return country_of_ip(party.ip)

    def cross_border(self, source: Party, destination: Party) -> bool:
        """PII went to a country outside the home set (`geo.home`); without one, to another
        country than the one it came from. Unknown countries are not called a crossing."""
        to = destination.country
        if to is None:
            return False
        if self.config.geo_home:
            return to not in self.config.geo_home
        return source.country is not None and source.country != to
