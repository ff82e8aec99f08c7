"""Key names seen in real APIs, outside the corpora: each must lead to its type, and hard
negatives must lead to nothing. (Guards generalization beyond the generator's vocabulary.)"""
import pytest

from conftest import field
from detectors.classify import Classifier

CLASSIFIER = Classifier()

POSITIVE = (
    [("Person", k, "Maria Garcia") for k in
     "name full_name fullName customer_name contact_name first_name given_name last_name surname family_name middle_name "
     "cardholder_name card_holder holder_name account_holder_name beneficiary_name beneficiary payee_name recipient_name "
     "sender_name shipping_name billing_name patient_name employee_name user_full_name display_name author owner_name "
     "emergency_contact_name guardian_name spouse_name legal_name preferred_name fname lname nombre Name customerName "
     "clientName passenger_name traveler_name guest_name driver_name insured_name policyholder_name".split()]
    + [("Email", k, "maria.garcia@example.com") for k in "email mail e_mail emailAddress contact work_email user".split()]
    + [("Phone", k, v) for k in "phone phone_number phoneNumber mobile mobile_number cell tel telephone contact_number fax "
       "home_phone work_phone msisdn whatsapp sms_number primaryPhone".split()
       for v in ("+1 (212) 555-0188", "212-555-0188", "+442079460958", "(212) 555 0188", "+49 30 901820")]
    + [("Birth date", k, "1985-03-22") for k in
       "dob date_of_birth dateOfBirth birth_date birthDate birthday birthdate born born_on bday DOB".split()]
    + [("Gender", k, v) for k in "gender sex Gender genderIdentity".split() for v in ("male", "F", "Female", "M", "woman", "nonbinary")]
    + [("SSN", k, v) for k in "ssn SSN social_security_number socialSecurityNumber tax_id taxpayer_id national_id".split()
       for v in ("412-55-7890", "412557890")]
    + [("Driver license", k, "D1234567") for k in
       "driver_license drivers_license driverLicense driversLicenseNumber dl_number dl license_number licence_number "
       "driving_licence dlNumber DriverLicenseNo".split()]
    + [("IP address", k, v) for k in "ip ip_address ipAddress client_ip remote_addr remote_ip user_ip source_ip last_login_ip "
       "origin_ip x_forwarded_for device_ip".split() for v in ("203.0.113.5", "2001:db8::5")]
    + [("IBAN", k, "GB82 WEST 1234 5698 7654 32") for k in "iban account_iban bank_account accountNumber".split()]
    + [("Card", k, "4539 1488 0343 6467") for k in "card_number cardNumber pan cc_number credit_card number ccnum card".split()]
    + [("Location", k, v) for k, v in [
        ("street", "12 Main St"), ("address", "12 Main St, Springfield"), ("address_line_1", "12 Main St"),
        ("addressLine1", "12 Main St"), ("street_address", "12 Main St"), ("city", "Springfield"), ("town", "Bath"),
        ("zip", "62704"), ("zip_code", "62704"), ("postal_code", "SW1A 1AA"), ("postcode", "SW1A 1AA"),
        ("latitude", "39.78"), ("longitude", "-89.65"), ("lat", "39.78"), ("lng", "-89.65"), ("lon", "-89.65"),
        ("home_address", "12 Main St"), ("billing_address", "12 Main St, Springfield, IL"), ("location", "Springfield, IL"),
        ("coordinates", "39.78,-89.65"), ("geo", "39.78,-89.65"), ("mailing_address", "PO Box 12, Springfield"),
        ("street_name", "Main Street")]]
)

NEGATIVE = [
    ("order_id", "4539148803436467"), ("orderNumber", "4539148803436467"), ("tracking", "1Z999AA10123456784"),
    ("trackingNumber", "4539148803436467"), ("sku", "4539148803436467"), ("transaction_id", "4539148803436467"),
    ("id", "4539148803436467"), ("barcode", "4006381333931"), ("gtin", "04006381333931"),
    ("version", "1.2.3.4"), ("appVersion", "10.0.19041.1"), ("build", "1.0.0.1234"), ("sdkVersion", "2.3.4.5"),
    ("os_version", "10.0.0.1"), ("ein", "12-3456789"), ("employer_id", "12-3456789"), ("routing_number", "021000021"),
    ("aba", "021000021"), ("account_number", "123456789"), ("size", "M"), ("size", "F"), ("shirt_size", "L"), ("fit", "M"),
    ("grade", "F"), ("direction", "M"), ("created_at", "1985-03-22"), ("updated", "03/22/1985"), ("delivery_date", "22.03.1985"),
    ("timestamp", "479001600"), ("expires", "1985-03-22"), ("date", "1985-03-22"), ("start_date", "1985-03-22"),
    ("company", "Acme Corp"), ("company_name", "Johnson & Johnson"), ("brand", "Tommy Hilfiger"), ("product", "Ralph Lauren Polo"),
    ("product_name", "Calvin Klein Jeans"), ("model", "Galaxy S24"), ("title", "Senior Engineer"), ("job_title", "Manager"),
    ("description", "Blue cotton shirt"), ("status", "active"), ("currency", "USD"), ("amount", "4155550100"), ("price", "19.99"),
    ("quantity", "212"), ("count", "5551234567"), ("phone_verified", "true"), ("ref", "212-555-0188"), ("invoice", "412-55-7890"),
    ("ip_version", "4"), ("server", "10.0.0.1"), ("host", "192.168.1.10"), ("node_ip", "10.1.2.3"),
    ("uuid", "3f2b8c1e-9d4a-4b7e-8c2a-1f0e9d8c7b6a"), ("hash", "d41d8cd98f00b204e9800998ecf8427e"),
    ("token", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc"), ("locale", "en_US"), ("timezone", "America/New_York"),
    ("language", "en"), ("url", "https://example.com/users/12"), ("city_count", "3"), ("lat_enabled", "true"),
    ("event", "Berlin Marathon"), ("venue", "Madison Square Garden"), ("state", "IL"), ("country", "US"),
]


@pytest.mark.parametrize("data_type, key, value", POSITIVE, ids=lambda x: str(x))
def test_real_world_keys_find_their_type(data_type, key, value):
    assert data_type in {f.type for f in CLASSIFIER.classify([field(key, value)])}


@pytest.mark.parametrize("key, value", NEGATIVE, ids=lambda x: str(x))
def test_hard_negatives_find_nothing(key, value):
    assert CLASSIFIER.classify([field(key, value)]) == []
