import pytest

from sensor.model import Key, key_tokens


@pytest.mark.parametrize("raw", ["customerEmail", "customer_email", "customer-email", "CustomerEmail", "CUSTOMER_EMAIL"])
def test_key_styles_normalize_to_the_same_tokens(raw):
    assert key_tokens(raw) == ("customer", "email")


def test_acronyms_and_digits_split():
    assert key_tokens("clientIPAddress") == ("client", "ip", "address")
    assert key_tokens("addressLine1") == ("address", "line", "1")
    assert key_tokens("SSN") == ("ssn",)


def test_compact_form_matches_joined_words():
    assert Key.of("DateOfBirth").compact == "dateofbirth"
    assert Key.of("date_of_birth").contains(("birth",))
    assert not Key.of("date_created").contains(("birth",))
