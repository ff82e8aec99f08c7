"""The proxy's verdict on a request that a redact or block rule could act on (SPEC.md section 9).

Most requests never get here: `candidates` judges the rules' source and destination selectors
with what is known before classification (policy.could_act), and only a request one of them could
act on is classified inline (its request parts: path, query, headers, body) by an engine living in
the proxy process. That engine exists only when the policy has redact or block rules, and is
loaded (spaCy with it) before traffic: a proxy without such rules pays nothing. It runs on one
thread of its own (its caches are not shared between threads); the proxy's event loop awaits the
verdict at most enforcement.inline_timeout_ms and serves other connections meanwhile. Past the
bound, or on an error, the request is forwarded unchanged (answered 403 under
enforcement.fail_closed), and counted either way.

The event and the counters come from the classifier process, as for every flow: the proxy submits
the request as it was BEFORE redaction, with Outcome.record(), so the event's findings are the
request's own and its violations say what was done (policy.mark_enforced).
"""
from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .. import policy
from ..config import Config
from ..events.peers import is_external, name_of
from ..geo.locate import Locator
from ..model import Event, Exchange, Finding, Party, Peer, Request
from . import redact

BLOCKED = "blocked by pii-sensor policy"


@dataclass
class Outcome:
    """What the proxy does with one request, and the record of it the classifier process counts."""

    action: str | None = None  # "block" or "redact"; None: forward unchanged
    rule: str | None = None  # the rule a 403 names
    data_types: list = field(default_factory=list)  # ... and the data types that rule matched
    target: str | None = field(default=None, repr=False)  # the rewritten parts of a redacted request (None: unchanged)
    headers: list | None = field(default=None, repr=False)
    body: bytes | None = field(default=None, repr=False)
    acted: list = field(default_factory=list)  # [(rule, action, enforced)]: what each acting rule got
    failure: str | None = None  # timeout, error, unredactable, streamed
    dry_run: bool = False
    seconds: float = 0.0  # from the request hook to the verdict

    @property
    def changes_traffic(self) -> bool:
        return self.action is not None and not self.dry_run

    def record(self) -> dict:
        """Plain values for the wire to the classifier process (Exchange.enforcement)."""
        return {"actions": [list(a) for a in self.acted], "dry_run": self.dry_run, "failure": self.failure,
                "blocked": self.action == "block" and not self.dry_run, "seconds": round(self.seconds, 6)}

    def answer(self) -> bytes:
        """The 403 body: the rule and the data types, never a value."""
        doc = {"error": BLOCKED, "rule": self.rule, "data_types": self.data_types}
        if self.failure:
            doc["reason"] = self.failure  # blocked because the verdict failed (enforcement.fail_closed)
        return json.dumps(doc).encode()


class Enforcer:
    def __init__(self, config: Config):
        self.config = config
        self.rules = {r.name: r for r in config.policy if r.action in policy.ENFORCING}
        self.timeout = config.enforcement_timeout_ms / 1000
        self.dry_run, self.fail_closed = config.enforcement_dry_run, config.enforcement_fail_closed
        self.locator = Locator(config)
        self.names_known = config.kubernetes is None  # else Kubernetes names workloads, in the engine
        self.sensor = None
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="pii-sensor-enforce")
        self.loading = self.thread.submit(self._load)

    def _load(self) -> None:
        from ..engine import Sensor  # the detectors load only where rules need them

        sensor = Sensor(self.config)
        # one request through every stage (spaCy included), so the first real one does not pay for loading
        sensor.findings(Exchange(0.0, Peer(), Peer(), Request(headers=[("content-type", "application/json")],
                                                              body=b'{"note": "Jane Doe wrote from Berlin"}', method="POST")))
        self.sensor = sensor

    def wait_ready(self, timeout: float) -> bool:
        """Wait for the engine to load; False if it has not within `timeout` or failed to."""
        try:
            self.loading.result(timeout)
        except Exception:  # noqa: BLE001 - the verdicts then fail, and are counted as errors
            return False
        return True

    def candidates(self, source: Peer, destination: Peer) -> list[policy.Rule]:
        """The rules that could act on a request between these peers, judged without its data (cheap:
        on the event loop, for every request). The destination's IP is None before connecting."""
        src = Party(source.ip, source.port, name_of(source, self.config))
        # the raw host, not the events' masked one: judging labels may take spaCy, which is the
        # enforcement thread's alone (and no work for the event loop); the verdict after uses the events'
        dst = Party(destination.ip, destination.port, name_of(destination, self.config), host=(destination.host or "").lower(),
                    external=is_external(destination, self.config))
        src.country = self.locator.country(src, False)
        dst.country = self.locator.country(dst, bool(dst.external))
        crossing = None if dst.country is None else self.locator.cross_border(src, dst)
        return policy.could_act(list(self.rules.values()), src, dst, crossing, self.names_known)

    async def decide(self, exchange: Exchange) -> Outcome:
        """The verdict on a request (its Exchange without a response), bounded in time."""
        started = time.perf_counter()
        future = self.thread.submit(self._verdict, exchange)
        try:
            outcome = await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except TimeoutError:
            future.cancel()  # still queued: it never runs
            outcome = self.failed("timeout")
        except Exception:  # noqa: BLE001 - a bug in classification must not take the request down
            outcome = self.failed("error")
        outcome.seconds = time.perf_counter() - started
        return outcome

    def failed(self, reason: str) -> Outcome:
        """No verdict: forwarded unchanged, or blocked under enforcement.fail_closed (never in a dry run)."""
        block = self.fail_closed and not self.dry_run and reason != "streamed"  # a streamed body is already upstream
        return Outcome("block" if block else None, failure=reason, dry_run=self.dry_run)

    def _verdict(self, exchange: Exchange) -> Outcome:
        """In the enforcement thread: classify the request, judge the policy as the event would, and
        work out the block or the redaction."""
        if self.sensor is None:
            self.loading.result()  # re-raises why loading failed: counted as an error
        findings = self.sensor.findings(exchange)
        if not findings:
            return Outcome(dry_run=self.dry_run)
        event = self.sensor.events.build(exchange, findings)
        self.sensor.events.name_workloads(event)
        self.sensor.events.judge(event)
        acting = [self.rules[v["rule"]] for v in event.violations if v["rule"] in self.rules]
        if not acting:
            return Outcome(dry_run=self.dry_run)
        enforce = not self.dry_run
        block = next((r for r in acting if r.action == "block"), None)
        if block is not None:
            return Outcome("block", block.name, _types(block, event), acted=[(block.name, "block", enforce)],
                           dry_run=self.dry_run)
        return self._redaction(exchange, findings, event, acting)

    def _redaction(self, exchange: Exchange, findings: list[Finding], event: Event, rules: list) -> Outcome:
        types = {t for rule in rules for t in _types(rule, event)}
        chosen = [f for f in findings if f.type in types]
        request, config = exchange.request, self.config
        target = redact.redact_target(request.target, chosen)
        headers = redact.redact_headers(request.headers, chosen)
        body = redact.redact_body(request.headers, request.body, chosen, config.max_body_bytes,
                                  config.max_array_items, config.max_depth)
        missed = target.missed + headers.missed + body.missed
        if missed and self.fail_closed and not self.dry_run:  # a value would still leave: block instead
            return Outcome("block", rules[0].name, sorted({f.type for f in missed}), failure="unredactable",
                           acted=[(r.name, "block", True) for r in rules])
        return Outcome("redact", rules[0].name, sorted(types), target.value, headers.value, body.value,
                       acted=[(r.name, "redact", not self.dry_run and not missed) for r in rules],
                       failure="unredactable" if missed else None, dry_run=self.dry_run)

    def close(self) -> None:
        self.thread.shutdown(wait=False, cancel_futures=True)


def _types(rule: policy.Rule, event: Event) -> list[str]:
    """The data types of the event the rule is about: its data_types, or all (a min_sensitivity rule)."""
    return sorted(rule.data_types.intersection(event.data_types)) if rule.data_types else list(event.data_types)
