"""The data map (SPEC.md section 6): aggregation and change events, and `pii-sensor map`."""
import json
import re

from conftest import CORPUS, ROOT, run_cli
from sensor.datamap.flows import BadEvent, DataMap

import pytest


def event(src="checkout", dst_host="api.stripe.com", types=("Card",), when="2026-11-22T10:00:00.000Z",
          namespace="shop", external=True, country="US", endpoint="/v1/charges", violations=(), count=None):
    e = {"time": when, "source": {"ip": "10.244.1.7", "port": 5000, "name": src, "namespace": namespace},
         "destination": {"ip": "54.187.174.169", "port": 443, "host": dst_host, "name": None, "external": external,
                         "country": country},
         "request": {"method": "POST", "path": endpoint, "endpoint": endpoint}, "data_types": list(types),
         "cross_border": country not in (None, "DE"), "violations": [{"rule": r, "action": "alert"} for r in violations]}
    if count:
        e["adjusted_count"] = count
    return e


def test_events_make_nodes_edges_and_each_change_once():
    m = DataMap()
    changes = m.add(event())
    assert [c["type"] for c in changes] == ["new_external_destination", "new_flow"]
    assert m.add(event(when="2026-11-22T11:00:00.000Z")) == []  # nothing new
    changes = m.add(event(types=("Email",), endpoint="/v1/customers", count=5))
    assert [(c["type"], c.get("data_type")) for c in changes] == [("new_data_type", "Email")]
    changes = m.add(event(types=("Person",), violations=("card-data-to-psp-only",)))
    assert [c["type"] for c in changes] == ["new_data_type", "policy_violation"]
    doc = m.document()
    assert doc["nodes"][0]["id"] == "api.stripe.com" and doc["nodes"][0]["kind"] == "external"
    assert doc["nodes"][1]["id"] == "shop/checkout" and doc["nodes"][1]["kind"] == "workload"
    (edge,) = doc["edges"]
    assert edge == {"source": "shop/checkout", "target": "api.stripe.com", "data_types": ["Person", "Card", "Email"],
                    "sensitivity": "high", "exchanges": 8, "first_seen": "2026-11-22T10:00:00.000Z",
                    "last_seen": "2026-11-22T11:00:00.000Z", "endpoints": ["POST /v1/charges", "POST /v1/customers"],
                    "country": "US", "cross_border": True, "violations": ["card-data-to-psp-only"]}


def test_sensitivity_raised_is_a_change_and_unnamed_parties_are_their_address_or_host():
    m = DataMap()
    m.add(event(src=None, namespace=None, dst_host="users.internal", external=False, types=("Email",), country=None))
    changes = m.add(event(src=None, namespace=None, dst_host="users.internal", external=False, types=("SSN",),
                          country=None))
    assert ("sensitivity_raised", "medium", "high") in [(c["type"], c.get("before"), c.get("after")) for c in changes]
    assert {n["id"] for n in m.document()["nodes"]} == {"10.244.1.7", "users.internal"}
    assert all(n["kind"] == "workload" for n in m.document()["nodes"])


def test_events_without_personal_data_make_no_flow_and_bad_ones_are_refused():
    m = DataMap()
    assert m.add(event(types=())) == [] and m.document() == {"nodes": [], "edges": []}
    for bad in ({}, {"source": {}, "destination": {}, "data_types": ["Card"]}, {**event(), "data_types": ["Secret"]},
                {**event(), "source": "checkout"}):
        with pytest.raises(BadEvent):
            m.add(bad)


def test_map_command_json_and_html_from_a_capture_and_a_har(tmp_path):
    page = tmp_path / "map.html"
    result = run_cli("map", ROOT / "fixtures" / "pcaps" / "keepalive.pcap", CORPUS / "labeled.har", "--format", "json",
                     "--html", page)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    targets = {e["target"] for e in doc["edges"]}
    assert {"users.internal", "api.stripe-like.example.com"} <= targets
    assert {n["id"] for n in doc["nodes"]} == {e["source"] for e in doc["edges"]} | targets
    edge = next(e for e in doc["edges"] if e["target"] == "users.internal")
    assert {"Person", "Email"} <= set(edge["data_types"]) and edge["exchanges"] >= 2 and edge["endpoints"]
    html = page.read_text()
    assert not re.search(r"<(?:script|link|img)[^>]+(?:src|href)=", html)  # nothing from the network
    assert '"edges"' in html and "nodes, " in result.stderr


def test_the_page_holds_no_markup_from_the_traffic():
    from sensor.datamap.page import render

    m = DataMap()
    m.add(event(dst_host="</script><script>alert(1)</script><!--<script"))
    html = render(m.document(), [])
    data = html.split('id="map-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and json.loads(data)["nodes"][0]["id"].startswith("</script>")


def test_map_table_and_bad_input(tmp_path):
    result = run_cli("map", ROOT / "fixtures" / "pcaps" / "keepalive.pcap")
    assert result.returncode == 0 and result.stdout.startswith("SOURCE") and "users.internal" in result.stdout
    missing = run_cli("map", tmp_path / "nope.har")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
