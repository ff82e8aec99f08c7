"""Geography and policy (SPEC.md section 7): countries on events, cross_border, policy rules."""
import json
import re

import pytest

from conftest import har_entry, run_cli
from sensor import config as config_mod
from sensor.engine import Sensor
from sensor.errors import InputError
from sensor.geo.countries import EEA, EU, expand
from sensor.geo.locate import country_of_ip
from sensor.geo.regions import country_of_region
from sensor.sources import har

CARD = {"card": {"number": "4242424242424242", "name": "Jane Doe"}}


def test_groups_expand_to_their_members_and_bad_codes_are_named():
    assert expand(["EEA"]) == EEA and len(EU) == 27 and {"NO", "IS", "LI"} <= EEA - EU
    assert expand(["eu", "ch"]) == EU | {"CH"}
    with pytest.raises(ValueError, match="'XX'"):
        expand(["DE", "XX"])


@pytest.mark.parametrize("region,country", [
    ("eu-west-1", "IE"), ("eu-central-1", "DE"), ("us-east-1", "US"), ("europe-west4", "NL"),
    ("asia-northeast1", "JP"), ("westeurope", "NL"), ("eastus2", "US"), ("germanywestcentral", "DE"),
    ("us-gov-west-1", "US"), ("mars-north-1", None)])
def test_cloud_regions_map_to_countries(region, country):
    assert country_of_region(region) == country


def test_external_addresses_get_their_registry_country_and_private_ones_none():
    assert country_of_ip("8.8.8.8") == "US"  # Google's resolver, registered in the US (ARIN)
    assert country_of_ip("2a00:1450:4001::1") == "IE"  # Google Ireland's IPv6 block (RIPE)
    assert country_of_ip("10.1.2.3") is None and country_of_ip("not an ip") is None


def _config(tmp_path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return config_mod.load(str(path))


POLICY = """
geo: {home: [EEA], country: DE}
workloads:
  - {name: checkout, match: [10.244.1.0/24]}
  - {name: reports, match: [10.244.9.0/24], country: US}
policy:
  - name: card-data-to-psp-only
    data_types: [Card]
    to: {external: true}
    unless_to: {hosts: ["*.stripe.com"]}
    action: block
  - name: sensitive-data-stays-home
    min_sensitivity: high
    to: {cross_border: true}
  - name: no-email-from-reports
    data_types: [Email]
    from: {workloads: [reports]}
  - name: nothing-to-russia
    to: {countries: [RU]}
"""


def _event(config, server_ip, host, body, client="10.244.1.7"):
    entry = har_entry(url=f"https://{host}/v1/charge", body=body)
    entry["serverIPAddress"], entry["_clientIPAddress"] = server_ip, client
    return Sensor(config).process(har.entry_to_exchange(entry))


def test_countries_cross_border_and_violations_on_events(tmp_path):
    config = _config(tmp_path, POLICY)
    event = _event(config, "8.8.8.8", "api.psp.example", CARD).to_dict()
    assert event["source"]["country"] == "DE" and event["destination"]["country"] == "US"
    assert event["cross_border"] is True
    assert event["violations"] == [{"rule": "card-data-to-psp-only", "action": "block"},
                                   {"rule": "sensitive-data-stays-home", "action": "alert"}]


def test_unless_to_exempts_a_host_and_home_countries_are_no_crossing(tmp_path):
    config = _config(tmp_path, POLICY)
    event = _event(config, "185.60.216.35", "api.stripe.com", CARD)  # an Irish address: inside the EEA
    assert event.destination.country == "IE" and not event.cross_border and event.violations == []


def test_workload_selectors_and_configured_workload_countries(tmp_path):
    config = _config(tmp_path, POLICY)
    event = _event(config, "10.96.0.12", "mail.internal", {"email": "jane@example.com"}, client="10.244.9.4")
    assert event.source.name == "reports" and event.source.country == "US" and event.destination.country == "DE"
    assert [v["rule"] for v in event.violations] == ["no-email-from-reports"]
    event = _event(config, "10.96.0.12", "mail.internal", {"email": "jane@example.com"})
    assert event.violations == []


def test_country_selector_and_an_exchange_without_pii_violates_nothing(tmp_path):
    config = _config(tmp_path, POLICY)
    event = _event(config, "77.88.55.88", "yandex.example", {"email": "jane@example.com"})  # a Russian address
    assert "nothing-to-russia" in [v["rule"] for v in event.violations]
    assert _event(config, "77.88.55.88", "yandex.example", {"status": "ok"}) is None


def test_without_a_home_set_a_crossing_is_a_change_of_country(tmp_path):
    config = _config(tmp_path, "geo: {country: DE}\n")
    assert _event(config, "8.8.8.8", "api.example", CARD).cross_border is True
    assert _event(config, "185.60.216.35", "api.example", CARD).cross_border is True
    assert _event(_config(tmp_path, "geo: {region: eu-central-1}\n"), "10.96.0.1", "x.internal", CARD).cross_border is False


@pytest.mark.parametrize("rule,message", [
    ("{name: r, data_types: [Cards]}", "policy rule 'r': data_types: unknown data type 'Cards'"),
    ("{name: r, action: shout}", "policy rule 'r': action must be one of alert, redact, block"),
    ("{name: r, to: {planet: mars}}", "policy rule 'r': to: unknown selector(s) planet"),
    ("{name: r, to: {countries: [XX]}}", "policy rule 'r': to.countries: 'XX' is not an ISO 3166-1"),
    ("{name: r, min_sensitivity: extreme}", "policy rule 'r': min_sensitivity must be one of low, medium, high"),
    ("{data_types: [Card]}", "policy[0] needs a name"),
    ("{name: r, colour: red}", "policy rule 'r': unknown field(s) colour"),
])
def test_a_bad_rule_is_one_line_naming_rule_and_field_and_exit_2(tmp_path, rule, message):
    path = tmp_path / "bad.yaml"
    path.write_text(f"policy:\n  - {rule}\n")
    with pytest.raises(InputError, match=re.escape(message)):
        config_mod.load(str(path))
    result = run_cli("scan", "fixtures/pcaps/keepalive.pcap", "--config", path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_geo_settings_are_one_line_errors(tmp_path):
    for text, message in (("geo: {home: [Atlantis]}", "geo.home"), ("geo: {region: moon-1}", "geo.region"),
                          ("geo: {country: Germany}", "geo.country"), ("geo: [DE]", "geo must be a mapping")):
        path = tmp_path / "g.yaml"
        path.write_text(text + "\n")
        result = run_cli("scan", "fixtures/pcaps/keepalive.pcap", "--config", path)
        assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1


def test_violations_and_flow_data_types_are_counted_in_metrics(tmp_path, write_har):
    path = tmp_path / "p.yaml"
    path.write_text(POLICY)
    entry = har_entry(url="https://api.psp.example/v1/charge", body=CARD)
    entry["serverIPAddress"], entry["_clientIPAddress"] = "8.8.8.8", "10.244.1.7"
    prom = tmp_path / "m.prom"
    result = run_cli("scan", write_har(entry), "--config", path, "--format", "json", "--metrics-file", prom)
    assert result.returncode == 0, result.stderr
    event = json.loads(result.stdout)
    assert event["cross_border"] and event["destination"]["country"] == "US"
    text = prom.read_text()
    assert 'pii_sensor_policy_violations_total{action="block",rule="card-data-to-psp-only"} 1.0' in text
    assert 'pii_sensor_flow_data_types_total{country="US",data_type="Card",destination="api.psp.example",source="checkout"} 1.0' in text
    assert ('pii_sensor_cross_border_flows_total{country="US",destination="api.psp.example",sensitivity="high",'
            'source="checkout"} 1.0') in text
