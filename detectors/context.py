"""Shared stage-2 vocabulary: key words that say a value is, or is not, about a person.

Key words are matched against normalized key tokens (see field.Key), so
`orderId`, `order_id` and `Order-ID` all carry the token 'order'.
"""
from __future__ import annotations

from sensor.model import Field

# Keys naming identifiers, codes and counters of things, not people.
ID_WORDS = frozenset(
    "id ids uuid guid order orders tracking track invoice reference ref sku barcode ean upc "
    "isbn imei serial transaction txn shipment parcel confirmation booking ticket request "
    "trace span session nonce token hash checksum sequence seq batch lot part model "
    "product item article catalog voucher coupon promo gift receipt rma case incident "
    "waybill consignment awb container vin".split()
)
# Parent keys that say the numbers below them identify things (a tracking {"number": ...}).
ID_PARENTS = frozenset(
    "tracking shipment shipments parcel invoice invoices barcode sku serial reference waybill "
    "consignment coupon voucher gift imei device devices orders".split()
)
# Keys whose values are counts, amounts and measures.
QUANTITY_WORDS = frozenset(
    "amount price total subtotal cost fee tax qty quantity count size weight height width "
    "length balance limit score rating rank duration timeout ttl offset page per total "
    "currency percent ratio rate".split()
)
# Keys for software versions and builds: `1.2.3.4` there is not an IP address.
VERSION_WORDS = frozenset(
    "version ver build release firmware sdk revision rev os agent useragent ua semver "
    "schema protocol api v".split()
)
# Parent or sibling keys that say the object describes a person.
PERSON_WORDS = frozenset(
    "person people user users customer customers client contact contacts member members "
    "patient patients employee employees applicant owner holder cardholder account_holder "
    "beneficiary payee payer recipient sender shipper consignee guest passenger traveler "
    "traveller driver student teacher author assignee reporter buyer seller tenant "
    "profile signer emergency kin spouse parent child guardian attendee subscriber "
    "billing shipping delivery insured policyholder debtor creditor borrower lender "
    "respondent candidate volunteer donor lead prospect visitor resident citizen "
    "individual natural me self courier rider signatory approver reviewer requester submitter "
    "representative caller".split()
)
# Parent or sibling keys that say the object describes a thing or an organization.
THING_WORDS = frozenset(
    "company companies organization organisation org business businesses employer merchant "
    "vendor supplier store shop brand product products item items sku catalog category "
    "categories app application service services plan plans tier project projects team "
    "teams repo repository file files folder bucket host server cluster node pod namespace "
    "region zone datacenter device devices bank branch school university hotel restaurant "
    "venue event events campaign course feature flag tag tags label labels model channel "
    "playlist song album artist_genre genre book movie course warehouse carrier "
    "airline airport station product_name brand_name website domain industry".split()
)
# Sibling keys that only a person record has.
PERSON_SIBLINGS = frozenset(
    "email phone mobile dob birth birthday birthdate gender sex ssn firstname lastname "
    "surname givenname familyname address street city zip postcode postal nationality "
    "passport".split()
)
# Sibling keys that only an organization or product record has.
THING_SIBLINGS = frozenset(
    "ein duns vat website url homepage domain industry sector employees headcount founded "
    "sku price stock inventory quantity qty description category manufacturer "
    "version ticker revenue logo slug".split()
)

BIRTH_CUES = ("born", "birth", "dob", "birthday", "b-day", "bday")


def person_siblings(field: Field) -> int:
    """How many of the field's siblings are keys only a person record has (email, phone, dob ...)."""
    return sum(1 for k in field.record.keys
               if k is not field.key and (k.has(PERSON_SIBLINGS) or k.contains(("email", "phone", "birth"))))


def nearby_has(field: Field, words) -> bool:
    """For a span found in free text: do the words around it contain one of `words`?"""
    return bool(field.nearby) and any(w in field.nearby for w in words)

