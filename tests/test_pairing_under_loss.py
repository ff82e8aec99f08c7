"""Loss must never corrupt what is seen: packets are removed from a recorded keep-alive capture at
fixed seeds, and no response may ever be paired with another request's. Each response of the
recording names the path of its request (`X-Echo-Path`)."""
import random
from pathlib import Path

import pytest

from sensor.config import Config
from sensor.sources.pcap import frames
from sensor.stats import Stats
from sensor.wire.session import CaptureSession

CAPTURE = Path(__file__).resolve().parent.parent / "fixtures" / "pcaps" / "recorded_keepalive.pcap"
REQUESTS = 320  # what the recording sent (fixtures/record_keepalive.py)


def exchanges_after_loss(rate: float, seed: int):
    stats, rng = Stats(), random.Random(seed)
    session = CaptureSession(stats, Config())
    out = []
    for linktype, frame, ts in frames(str(CAPTURE), stats):
        if rng.random() >= rate:
            out += session.frame(linktype, frame, ts)
    return out + session.finish(), stats


@pytest.mark.parametrize("rate", [0.0, 0.002, 0.01, 0.05])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_response_is_paired_with_another_request(rate, seed):
    exchanges, stats = exchanges_after_loss(rate, seed)
    paired = [ex for ex in exchanges if ex.response is not None]
    wrong = [ex.request.target for ex in paired if ex.response.header("x-echo-path") != ex.request.target]
    assert wrong == []
    if rate == 0:
        assert len(paired) == REQUESTS and not stats.dropped
    else:
        # what was lost is counted: gaps in the streams, and the requests or responses they took
        assert stats.dropped["tcp_gap"] > 0
        if rate <= 0.01:  # and little is lost beyond what the gaps took
            assert len(paired) >= 0.95 * REQUESTS
        lost = REQUESTS - len(paired)
        assert lost <= stats.dropped["tcp_gap"] + stats.dropped["orphan_response"] + stats.dropped["response_lost"] \
            + stats.dropped["incomplete_message"] + sum(ex.response is None for ex in exchanges)
