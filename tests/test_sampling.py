"""Adaptive sampling under overload: a sample of every endpoint, every new shape, nothing missed
of what the traffic carries, and counts that add up."""
import json

from sensor.config import Config
from sensor.engine import Sensor
from sensor.feed import Feed
from sensor.model import Exchange, Peer, Request, Response
from sensor.sampling import Sampler, every


def _exchange(n: int) -> Exchange:
    """Four endpoints in turn; the profile endpoint starts sending a birth date half-way."""
    kind = n % 4
    body, method, target = b"", "GET", f"/v1/users/{n}"
    if kind == 0:
        answer = {"id": n, "email": f"jane.doe+{n}@example.com", "status": "active"}
    elif kind == 1:
        target, answer = f"/v1/orders/{n}", {"order": n, "total": 12.5, "items": [{"sku": "A-1", "qty": 1}]}
    elif kind == 2:
        method, target, answer = "POST", "/v1/payments", {"ok": True}
        body = json.dumps({"iban": "DE89370400440532013000", "amount": n}).encode()
    else:
        target, answer = f"/v1/profile/{n}", {"first_name": "Ana", "last_name": "Lima"}
        if n >= 1500:
            answer["birth_date"] = "1990-01-02"
    json_type = [("Content-Type", "application/json")]
    return Exchange(1_800_000_000.0 + n, Peer("10.0.0.1", 40000), Peer("10.0.0.2", 8080, "api.internal"),
                    Request(json_type if body else [], body, method=method, target=target),
                    Response(json_type, json.dumps(answer).encode(), status=200))


def _pairs(events) -> set:
    return {(e.route, t) for e in events for t in e.data_types}


def test_rate_grows_with_the_backlog():
    assert [every(s) for s in (0.0, 0.49, 0.74, 0.75, 1.0)] == [1, 1, 1, 2, 1024]


def test_first_exchanges_and_new_shapes_are_classified_and_the_rest_sampled():
    sampler = Sampler(first=3)
    admitted = [sampler.admit(_exchange(4 * i + 1), backlog_share=0.8) for i in range(100)]  # orders, 1 in 8
    assert admitted[:3] == [1, 1, 1]
    # the first three, the fourth (the first under pressure: its shape is new), then one in eight
    assert [i for i, a in enumerate(admitted) if a] == [0, 1, 2, 3] + [i for i in range(4, 100) if (i + 1) % 8 == 0]
    assert sum(admitted) == 100 - sampler.endpoints[next(iter(sampler.endpoints))].left_out  # stands for the rest
    assert sampler.admit(_exchange(3), 0.8) == 1  # a new endpoint
    assert sampler.admit(_exchange(1503), 0.8) == 1  # ... and a new shape on a known one
    assert all(sampler.admit(_exchange(4 * i + 1), backlog_share=0.2) for i in range(10))  # no pressure: all


def test_overloaded_feed_reports_every_endpoint_and_data_type_and_counts_add_up():
    traffic = [_exchange(n) for n in range(3000)]
    expected = _pairs(e for e in Sensor(Config()).process_many([_exchange(n) for n in range(3000)]) if e)
    config = Config()
    config.workers, config.max_backlog = 1, 128
    sensor = Sensor(config)
    published = []
    feed = Feed(sensor, lambda events: published.extend(events), emit_all=True)
    try:
        feed.offer(traffic)  # at once: the backlog fills while the worker has not taken any of it
    finally:
        feed.close()
    stats = sensor.stats
    assert stats.sampled["overload"] > 2000  # most of it was sampled out ...
    assert _pairs(published) == expected  # ... yet every (endpoint, data type) pair was reported
    assert stats.exchanges + stats.dropped["queue_full"] == 3000  # seen (classified or sampled) or counted lost
    assert len(published) == stats.exchanges - stats.sampled["overload"]
    # each classified exchange stands for those of its endpoint sampled out before it
    not_yet_carried = sum(e.left_out for e in feed.sampler.endpoints.values())
    assert sum(e.adjusted_count for e in published) + not_yet_carried == stats.exchanges
