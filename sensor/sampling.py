"""Adaptive sampling for live traffic: when more exchanges arrive than the workers classify, a
sample of each endpoint is classified instead of whatever happens to fit.

Guarantees, whatever the load:
- the first `classifier.sample_first` exchanges of every endpoint are classified, and so is every
  exchange whose shape (its method, content types and the key names of its bodies and query) is
  new for its endpoint: a new data type on a flow is never missed for want of capacity;
- every other exchange is classified while the backlog of exchanges waiting for a worker is
  below three quarters full (bursts pass whole); above, one in `every` per endpoint is, and
  `every` grows with the backlog: 2 at three quarters, doubling with each further fortieth, up
  to 1024 (a proportional controller: under steady overload the backlog settles where what is
  admitted is what the workers classify);
- an exchange left out is counted as seen and sampled (`pii_sensor_sampled_total{reason}`, not a
  drop), and the next classified exchange of its endpoint carries it in its `adjusted_count`, so
  volume metrics add up to the traffic.
Endpoints are remembered up to a bound (a forgotten one is new again, which errs toward
classifying), and so are shapes per endpoint: one with more shapes than that is sampled like
the rest.
"""
from __future__ import annotations

import re
from collections import OrderedDict

from .model import Exchange, header_value

_VARIABLE = re.compile(r"[^/]*\d[^/]*")  # a path segment with a digit: an id, not part of the route
_KEY = re.compile(rb'"((?:[^"\\]|\\.){1,64})"\s*:')  # a JSON object key
_DATA_KEY = re.compile(rb"[\d@]")  # keys that are ids or addresses ({"8812": ...}) are data, not shape
_QUERY_NAME = re.compile(r"[?&]([^=&#]{1,64})")
_SHAPE_BYTES = 64 << 10  # of each body: enough for the keys that matter, bounded cost per exchange
MAX_EVERY = 1024
OVERLOAD = "overload"


def endpoint_of(exchange: Exchange) -> tuple:
    """A cheap route for fairness: the destination, the method and the path with variable segments folded."""
    path = exchange.request.target.split("?", 1)[0]
    return (exchange.destination.ip, exchange.destination.port, exchange.request.method,
            _VARIABLE.sub("*", path[:256]))


def _keys(body: bytes) -> frozenset:
    return frozenset(b"*" if _DATA_KEY.search(k) else k for k in _KEY.findall(body[:_SHAPE_BYTES]))


def shape_of(exchange: Exchange) -> int:
    """What the exchange's fields are called, not what they hold: a new shape may carry a new data type."""
    parts = [exchange.request.method, header_value(exchange.request.headers, "content-type"),
             frozenset(_QUERY_NAME.findall(exchange.request.target)), _keys(exchange.request.body)]
    if exchange.response is not None:
        parts += [header_value(exchange.response.headers, "content-type"), _keys(exchange.response.body)]
    return hash(tuple(parts))


class _Endpoint:
    __slots__ = ("seen", "shapes", "left_out")

    def __init__(self):
        self.seen = 0
        self.shapes: set[int] = set()
        self.left_out = 0  # exchanges sampled out since the last one classified


PRESSED = 0.75  # the share of the backlog in use from which exchanges are sampled


def every(backlog_share: float) -> int:
    """Classify one in this many exchanges of an endpoint, given the share of the backlog in use."""
    return 1 if backlog_share < PRESSED else min(MAX_EVERY, 2 ** int(1 + (backlog_share - PRESSED) * 40))


class Sampler:
    def __init__(self, first: int, max_endpoints: int = 10_000, max_shapes: int = 64):
        self.first, self.max_endpoints, self.max_shapes = first, max_endpoints, max_shapes
        self.endpoints: OrderedDict[tuple, _Endpoint] = OrderedDict()

    def admit(self, exchange: Exchange, backlog_share: float) -> int:
        """0 to leave the exchange out; otherwise how many exchanges of its endpoint it stands for."""
        key = endpoint_of(exchange)
        endpoint = self.endpoints.get(key)
        if endpoint is None:
            endpoint = self.endpoints[key] = _Endpoint()
            if len(self.endpoints) > self.max_endpoints:
                self.endpoints.popitem(last=False)
        else:
            self.endpoints.move_to_end(key)
        endpoint.seen += 1
        n = every(backlog_share)
        if n > 1 and endpoint.seen > self.first:  # shapes are looked at only under pressure: they cost
            shape = shape_of(exchange)
            if shape not in endpoint.shapes and len(endpoint.shapes) < self.max_shapes:  # beyond: sampled like the rest
                endpoint.shapes.add(shape)
                n = 1
        if n == 1 or endpoint.seen <= self.first or endpoint.seen % n == 0:
            stands_for, endpoint.left_out = 1 + endpoint.left_out, 0
            return stands_for
        endpoint.left_out += 1
        return 0
