import pytest

from sensor.events.endpoints import PathView, template
from sensor.payload.jsonpath import child, header, without_indices
from sensor.events.mask import mask


@pytest.mark.parametrize("path, endpoint", [
    ("/v1/users/8812", "/v1/users/{id}"),
    ("/v1/users/jane%40example.com/orders", "/v1/users/{email}/orders"),
    ("/v1/items/3f2b8c1e-9d4a-4b7e-8c2a-1f0e9d8c7b6a", "/v1/items/{uuid}"),
    ("/ip/203.0.113.7/score", "/ip/{ip}/score"),
    ("/reports/2024-05-01", "/reports/{date}"),
    ("/v2/orders/ORD-93821/items", "/v2/orders/{id}/items"),
    ("/health", "/health"), ("/", "/"),
])
def test_endpoint_templates(path, endpoint):
    assert template(path) == endpoint


def test_pii_in_paths_is_masked():
    view = PathView("/v1/users/jane%40example.com/x", {"jane@example.com": "Email"})
    assert view.masked == "/v1/users/****@*******.***/x" and view.template == "/v1/users/{email}/x"


def test_mask_keeps_shape_not_content():
    assert mask("jane.doe@example.com") == "****.***@*******.***"
    assert mask("4111 1111 1111 1111") == "**** **** **** ****"
    assert len(mask("x" * 500)) <= 41


def test_jsonpath_rendering():
    assert child("$", "email") == "$.email"
    assert child("$", "key-name") == "$['key-name']"
    assert child("$", "it's") == "$['it\\'s']"
    assert header("X-Forwarded-For") == "$['x-forwarded-for']"
    assert without_indices("$.a[0].b[12].c") == "$.a.b.c"
    assert without_indices("$['abc'][0]['x']") == without_indices("$.abc.x") == "$.abc.x"
    assert without_indices("$['key-name']") == "$['key-name']"


@pytest.mark.parametrize("path, endpoint", [
    ("/v1/people/Jane%20Doe", "/v1/people/{pii}"),
    ("/v1/people/jane-doe/profile", "/v1/people/{pii}/profile"),
    ("/v1/users/JohnSmith", "/v1/users/{pii}"),
    ("/v1/customers/maria/orders", "/v1/customers/{pii}/orders"),  # a lone first name after a people word
    ("/v1/contacts/%2B14155550132", "/v1/contacts/{id}"),
    ("/v1/users/me", "/v1/users/me"), ("/v1/users/search", "/v1/users/search"),
    ("/v1/payment-methods/default", "/v1/payment-methods/default"), ("/api/Products/GetAll", "/api/Products/GetAll"),
])
def test_names_in_paths_become_placeholders(path, endpoint):
    assert template(path) == endpoint


@pytest.mark.parametrize("token", ["jane-doe", "Jane_Doe", "x-jane-doe", "JaneDoe", "janedoe", "Jane Doe", "john.smith",
                                   "@Maria_Garcia", "jane.doe@example.com", "olga-ivanova"])
def test_names_written_as_identifiers_are_personal(token):
    from sensor.events import identifiers
    assert identifiers.kind(token) is not None


@pytest.mark.parametrize("token", ["payment-methods", "app-version", "x-forwarded-for", "x-request-id", "mobile-phone",
                                   "legal_name", "cardholderName", "order-items", "users-api", "checkout", "api",
                                   "stripe", "x-b3-traceid", "DebtorAccount", "first_name", "created_at"])
def test_schema_words_are_not_personal(token):
    from sensor.events import identifiers
    assert identifiers.kind(token) is None


def test_personal_host_labels_are_masked():
    from sensor.events.build import safe_host
    assert safe_host("jane-doe.example.com") == "****-***.example.com"
    assert safe_host("janedoe.github.io") == "*******.github.io"
    assert safe_host("api.stripe.com") == "api.stripe.com" and safe_host("10.0.0.7") == "10.0.0.7"
