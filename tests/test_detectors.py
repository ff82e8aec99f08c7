"""Each detector on values with and without context: what must be found and what must not."""
import pytest

from conftest import field
from detectors import birth_date, card, iban, person, phone, ssn
from detectors.classify import Classifier
from sensor.model import Field, Key, Record

CLASSIFIER = Classifier()


def types_of(key, value, **kw):
    return {f.type for f in CLASSIFIER.classify([field(key, value, **kw)])}


# --- Card -------------------------------------------------------------------

@pytest.mark.parametrize("number", ["4532015112830366", "4532 0151 1283 0366", "5425-2334-3010-9903", "371449635398431", "6011111111111117"])
def test_card_numbers_with_a_card_key(number):
    assert types_of("card_number", number) == {"Card"}


def test_card_rejects_failed_luhn_and_unknown_issuers():
    assert card.candidate("4532015112830367", None) is None  # Luhn fails
    assert card.candidate("9532015112830360", None) is None  # no issuer starts with 9


@pytest.mark.parametrize("key", ["order_id", "tracking_number", "invoiceNumber", "reference", "imei"])
def test_luhn_valid_ids_are_not_cards(key):
    assert "Card" not in types_of(key, "4532015112830366")


def test_card_expiry_counts_only_beside_a_card():
    record = Record(parents=(Key.of("card"),))
    fields = []
    for k, v in (("number", "4532015112830366"), ("exp_month", "12"), ("exp_year", "2027")):
        key = Key.of(k)
        record.add(key, v)
        fields.append(Field("request.body", "$.card." + k, key, v, record))
    assert {(f.path, f.type) for f in CLASSIFIER.classify(fields)} == {
        ("$.card.number", "Card"), ("$.card.exp_month", "Card"), ("$.card.exp_year", "Card")}
    assert types_of("exp_month", "12") == set()


# --- IBAN, SSN --------------------------------------------------------------

@pytest.mark.parametrize("value", ["DE89370400440532013000", "DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "FR1420041010050500013M02606"])
def test_iban_checksum(value):
    assert types_of("account", value) == {"IBAN"}


def test_iban_with_a_broken_checksum_is_nothing():
    assert iban.candidate("DE89370400440532013001", None) is None


def test_ssn_dashed_and_undashed():
    assert types_of("ssn", "536-90-4399") == {"SSN"}
    assert types_of("social_security_number", "536904399") == {"SSN"}
    assert types_of("value", "536-90-4399") == {"SSN"}  # dashed shape is evidence on its own


@pytest.mark.parametrize("key, value", [("value", "536904399"), ("routing_number", "021000021"), ("ein", "536-90-4399"), ("order_id", "536-90-4399")])
def test_not_ssn(key, value):
    assert "SSN" not in types_of(key, value)


def test_ssn_area_rules():
    for bad in ("000-12-3456", "666-12-3456", "912-12-3456", "123-00-4567", "123-45-0000"):
        assert ssn.candidate(bad, None) is None


# --- Phone, Email, IP -------------------------------------------------------

@pytest.mark.parametrize("key, value, siblings", [
    ("phone", "+1 415-555-2671", None), ("mobile", "+44 7911 123456", None), ("telefon", "030 12345678", {"country": "DE"}),
    ("tel", "06 12 34 56 78", {"locale": "fr-FR"}), ("msisdn", "+919876543210", None), ("phone", "(415) 555-2671", None),
])
def test_phones(key, value, siblings):
    assert types_of(key, value, siblings=siblings) == {"Phone"}


def test_national_number_needs_the_context_region():
    assert phone.candidate("030 12345678", field("telefon", "030 12345678", siblings={"country": "DE"})).detail == "DE"


@pytest.mark.parametrize("key, value", [("order_id", "4155552671"), ("amount", "4155552671"), ("created", "2024-05-01"), ("count", "12345678")])
def test_not_phones(key, value):
    assert "Phone" not in types_of(key, value)


def test_email_and_system_senders():
    assert types_of("contact", "jane.doe@example.com") == {"Email"}
    assert types_of("from", "renée.dupré@example.fr") == {"Email"}
    assert types_of("sender", "no-reply@example.com") == set()
    assert types_of("email", "not-an-email@") == set()


@pytest.mark.parametrize("key, value", [("ip", "203.0.113.7"), ("client_ip", "2001:db8::1"), ("remoteAddr", "198.51.100.4")])
def test_ip_addresses(key, value):
    assert types_of(key, value) == {"IP address"}


@pytest.mark.parametrize("key", ["version", "app_version", "firmware", "build", "server_ip", "gateway"])
def test_version_strings_and_infrastructure_are_not_client_ips(key):
    assert "IP address" not in types_of(key, "1.2.3.4")


def test_forwarded_headers():
    assert types_of("x-forwarded-for", "203.0.113.7, 10.0.0.1", part="request.headers") == {"IP address"}
    assert types_of("forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43", part="request.headers") == {"IP address"}
    assert types_of("x-served-by", "10.0.0.7", part="response.headers") == set()


# --- Driver license, Birth date, Gender --------------------------------------

def test_driver_license_needs_context():
    assert types_of("driver_license", "D1234567") == {"Driver license"}
    assert types_of("dl_number", "123456789", siblings={"dl_state": "NY"}) == {"Driver license"}
    assert types_of("code", "D1234567") == set()
    assert types_of("driver_id", "8862") == set()
    assert types_of("license_key", "D1234567") == set()


def test_driver_license_checked_against_the_stated_state():
    assert types_of("driver_license", "D1234567", siblings={"state": "FL"}) == set()  # FL is a letter + 12 digits
    assert types_of("driver_license", "D123456789012", siblings={"state": "FL"}) == {"Driver license"}


@pytest.mark.parametrize("value", ["1990-05-17", "05/17/1990", "17/05/1990", "17.05.1990", "May 17, 1990", "17 May 1990",
                                   "642902400", "642902400000", "-385689600", "1990-05-17T00:00:00Z"])
def test_birth_dates_in_many_shapes(value):
    assert types_of("date_of_birth", value) == {"Birth date"}
    assert birth_date.parse(value).year in (1990, 1957)


@pytest.mark.parametrize("key", ["created_at", "delivery_date", "updated", "expires", "date"])
def test_other_dates_are_not_birth_dates(key):
    assert types_of(key, "1990-05-17") == set()


def test_birth_date_rejects_impossible_dates():
    assert birth_date.parse("1990-02-30") is None
    assert birth_date.parse("2999-01-01") is None


@pytest.mark.parametrize("key, value", [("gender", "F"), ("sex", "male"), ("Gender", "non-binary"), ("geschlecht", "weiblich")])
def test_gender(key, value):
    assert types_of(key, value) == {"Gender"}


@pytest.mark.parametrize("key", ["size", "fit", "grade", "type"])
def test_single_letters_elsewhere_are_not_gender(key):
    assert types_of(key, "M") == set()


# --- Location -----------------------------------------------------------------

def test_address_parts():
    assert types_of("city", "Berlin") == {"Location"}
    assert types_of("zip", "94105") == {"Location"}
    assert types_of("postcode", "NW1 6XE") == {"Location"}
    assert types_of("street", "42 Baker Street") == {"Location"}
    assert types_of("lat", "52.5200", is_number=True) == {"Location"}
    assert types_of("house_number", "12", parents=["address"]) == {"Location"}


def test_ambiguous_place_words_need_an_address_around_them():
    assert types_of("state", "CA", siblings={"city": "Austin"}) == {"Location"}
    assert types_of("state", "running") == set()
    assert types_of("state", "CA") == set()
    assert types_of("region", "us-east-1", siblings={"city": "x"}) == set()
    assert types_of("country", "DE") == set()
    assert types_of("country", "DE", parents=["shipping_address"]) == {"Location"}
    assert types_of("email_address", "x") == set()
    assert types_of("city", "Leipzig", parents=["warehouse"]) == set()


# --- Person -------------------------------------------------------------------

def test_names_by_key():
    assert types_of("first_name", "Maria") == {"Person"}
    assert types_of("lastName", "van der Laar") == {"Person"}
    assert types_of("cardholder", "JANE DOE") == {"Person"}
    assert types_of("name", "Jane Doe", parents=["customer"]) == {"Person"}
    assert types_of("name", "Jane Doe", siblings={"email": "x", "phone": "y"}) == {"Person"}


def test_company_and_product_names_are_not_people():
    assert types_of("name", "Acme Corp") == set()
    assert types_of("name", "Jane Doe", parents=["company"]) == set()
    assert types_of("name", "Morgan Stanley", siblings={"ein": "1", "website": "x"}) == set()
    assert types_of("company_name", "Johnson Smith") == set()
    assert types_of("product_name", "Classic Runner") == set()
    assert types_of("username", "jdoe") == set()
    assert person.organization_name("Rosemann GmbH")
    assert person.organization_name("Turner, Sherman and Horn")
    assert not person.organization_name("Jane Doe")


# --- Free text ---------------------------------------------------------------

def test_free_text_spans():
    text = ("Hello, this is Priya Natarajan. My card 5555 5555 5555 4444 was charged twice. "
            "Reach me on +44 20 7946 0958 or at priya.n@example.co.uk.")
    found = {f.type: f.value for f in CLASSIFIER.classify([field("message", text)])}
    assert set(found) == {"Person", "Card", "Phone", "Email"}
    assert found["Email"] == "priya.n@example.co.uk"


def test_free_text_without_pii():
    text = "Version 2.4.1.9 of the Acme app fixes the crash. Order 4716108999716531 ships Monday via FedEx."
    assert CLASSIFIER.classify([field("body", text)]) == []


def test_free_text_needs_cues_for_dates_and_places():
    assert types_of("note", "Meeting moved to 03/14/1988 in Paris, see you there.") == set()
    assert "Birth date" in types_of("note", "The applicant was born on 03/14/1988, please verify.")


def test_card_context_from_parent_and_siblings():
    assert types_of("number", "4532015112830366", parents=["order", "card"]) == {"Card"}
    assert types_of("number", "4532015112830366", siblings={"cvc": "123"}) == {"Card"}
    assert types_of("code", "4532015112830366") == set()  # a bare run of digits with no context is an id
    assert types_of("gift_card_number", "4532015112830366") == set()
    assert types_of("number", "4532015112830366", parents=["shipment"]) == set()


def test_mailboxes_name_their_owner():
    found = {(f.type, f.value) for f in CLASSIFIER.classify([field("to", '"Sven Olsson" <sven@example.se>, Ops <ops@example.com>')])}
    assert ("Person", "Sven Olsson") in found and ("Email", "sven@example.se") in found
    assert types_of("from", "Jane Doe <jane.doe@example.com>") == {"Person", "Email"}


def test_ner_does_not_need_the_shared_tok2vec_the_sensor_leaves_out():
    """nlp.pipeline() excludes tok2vec for speed: that is only right while no component listens to it."""
    import spacy

    from detectors import nlp

    full = spacy.load(nlp.MODEL, exclude=["parser", "lemmatizer", "attribute_ruler", "tagger", "senter"])
    assert full.get_pipe("tok2vec").listening_components == []
    text = "Please ship the order to Maria Gonzalez at her home in Barcelona before Friday."
    expected = [(e.label_, e.start_char, e.end_char) for e in full(text).ents]
    assert expected and list(nlp.entities(text)) == expected


def test_spacy_loads_without_importing_other_packages_spacy_plugins():
    """presidio-analyzer registers a spaCy factory: importing it would cost the sensor a second at start."""
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("presidio_analyzer") is None:
        pytest.skip("presidio-analyzer is not installed here: no plugin to leave out")
    code = "import sys; from detectors import nlp; nlp.pipeline(); print('presidio_analyzer' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
