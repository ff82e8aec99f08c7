"""Events of a stream of exchanges, for `scan`: classified in batches, in input order; in worker
processes (`classifier.workers`; 0 = in this one) once the input is longer than one batch, so a
small file does not wait for workers to start."""
from __future__ import annotations

from itertools import chain, islice

from .engine import BATCH, Sensor
from .pool import ClassifierPool


def events(sensor: Sensor, exchanges, emit_all: bool = False, batch: int = BATCH):
    """The event (or None, as Sensor.process_many gives it) of each exchange, in order."""
    it = iter(exchanges)
    head = [chunk for chunk in (list(islice(it, batch)), list(islice(it, batch))) if chunk]
    chunks = chain(head, iter(lambda: list(islice(it, batch)), []))
    if len(head) < 2 or not sensor.config.workers:
        for chunk in chunks:
            yield from sensor.process_many(chunk, emit_all)
        return
    pool = ClassifierPool(sensor.config, sensor.config.workers, sensor.stats)
    try:
        for chunk in chunks:
            if pool.full():
                yield from _accounted(sensor, pool.results(wait_for=1), emit_all)
            pool.submit(chunk)
            yield from _accounted(sensor, pool.results(), emit_all)
        yield from _accounted(sensor, pool.drain(), emit_all)
    finally:
        pool.close()


def _accounted(sensor: Sensor, results, emit_all: bool):
    for batch_events, per_exchange in results:
        yield from sensor.account(batch_events, per_exchange, emit_all)
