"""Shared stage-2 vocabulary: key words that say a value is, or is not, about a person.

Key words are matched against normalized key tokens (see field.Key), so
`orderId`, `order_id` and `Order-ID` all carry the token 'order'.
"""
from __future__ import annotations

from sensor.model import Field, Key

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
    "billing shipping delivery insured policyholder debtor borrower lender attention "
    "respondent candidate volunteer donor lead prospect visitor resident citizen "
    "individual natural me self courier rider signatory approver reviewer requester submitter "
    "representative representatives caller owners officer officers director directors shareholder shareholders "
    "bearer bearers ubo receiver".split()
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
    "airline airport station product_name brand_name website domain industry settings dashboard "
    "branding datacenter origin departure arrival tax taxes group groups".split()
)
# Sibling keys that only a person record has.
PERSON_SIBLINGS = frozenset(
    "email phone mobile dob birth birthday birthdate gender sex ssn firstname lastname "
    "surname givenname familyname address street city zip postcode postal nationality "
    "passport".split()
)
# Sibling keys that only an organization or product record has.
THING_SIBLINGS = frozenset(
    "ein duns vat website homepage domain industry sector employees headcount founded "
    "sku price stock inventory quantity qty description category manufacturer "
    "version ticker revenue logo slug".split()
)

BIRTH_CUES = ("born", "birth", "dob", "birthday", "b-day", "bday")


def person_siblings(field: Field) -> int:
    """How many of the field's siblings are keys only a person record has (email, phone, dob ...)."""
    record = field.record
    if record.person_keys is None:
        record.person_keys = tuple(k for k in record.keys if k.has(PERSON_SIBLINGS) or k.contains(("email", "phone", "birth")))
    return sum(1 for k in record.person_keys if k is not field.key)


def nearby_has(field: Field, words) -> bool:
    """For a span found in free text: do the words around it contain one of `words`?"""
    return bool(field.nearby) and any(w in field.nearby for w in words)



# Keys of objects that belong to a business, not a person: its address is not personal data.
BUSINESS_WORDS = frozenset(
    "company companies organization organisations organisation organizations org business businesses "
    "employer merchant merchants vendor vendors supplier suppliers store stores shop shops warehouse "
    "warehouses office offices headquarters hq branch facility facilities venue clinic hospital "
    "institution bank support acquirer issuer corporation corporate firm agency servicer invoicer descriptor "
    "trading creditor creditors".split()  # a direct debit's creditor is the business collecting
)
# Siblings only a business record has (a location of a shop: business_name, opening hours ...).
BUSINESS_SIBLINGS = frozenset(
    "ein duns mcc industry sector headcount founded ticker revenue logo businessname dba "
    "doingbusinessas merchantcategorycode registrationnumber companynumber legalentityname".split()
)
# Values of type fields ("resourceType": "Organization", "object": "customer", "business_type": ...).
_TYPE_KEYS = frozenset("resourcetype object type kind entitytype businesstype holdertype accountholdertype".split())
_BUSINESS_TYPES = frozenset(
    "organization organisation company business location merchant store shop facility corporation "
    "llc partnership nonprofit non_profit government_entity governmententity".split()
)
_PERSON_TYPES = frozenset(
    "patient person individual practitioner relatedperson customer user cardholder contact employee "
    "member natural_person naturalperson sole_proprietorship".split()
)
# URL path words: a collection of people, or of businesses and their places.
_PERSON_RESOURCES = frozenset(
    "customers customer users user patients patient people persons person contacts contact members "
    "employees cardholders recipients accounts profiles me practitioner relatedperson".split()
)
_BUSINESS_RESOURCES = frozenset(
    "locations location merchants stores shops organizations organization companies businesses vendors "
    "suppliers warehouses facilities institutions sites offices".split()
)


# 'billing' and 'shipping' say what an address is for, not whose: a company is billed too.
_OWNING_PERSON_WORDS = PERSON_WORDS - frozenset("billing shipping delivery profile".split())


def owner(field: Field) -> str | None:
    """Whose value this is, 'person', 'business' or 'thing' (a product, a device, an event), from the
    objects around it, nearest first: the key each sits under ({"company": {"address": ...}}), then
    its type field and business-only siblings, and last the endpoint's resource (/v2/locations/...).
    None when nothing says."""
    record = field.record
    addressed = False  # under a shipping or billing address: whoever it goes to, not the thing shipped
    while record is not None:
        if record.parents:  # the key this object sits under
            key = record.parents[-1]
            if key.has(_OWNING_PERSON_WORDS):
                return "person"
            if key.has(BUSINESS_WORDS):
                return "business"
            if key.has(THING_WORDS):
                return None if addressed else "thing"
            addressed = addressed or key.has(_ADDRESSED)
            if key.has(_PLACE_OF) and record.parent is not None and _merchant_beside(record.parent):
                return "business"  # a transaction's location: where the merchant is
        said = _record_says(record, field.key)
        if said:
            return said
        if record.parent is None:
            return _resource_says(record.resource)
        record = record.parent
    return None


_ADDRESSED = frozenset("shipping billing delivery mailing".split())
_PLACE_OF = frozenset("location place venue site store".split())
_MERCHANT_KEYS = frozenset("merchant merchantname merchantid merchantentityid storename storeid".split())


def _merchant_beside(record) -> bool:
    return any(compact in _MERCHANT_KEYS and value.strip() for compact, value in record.values.items())


def _record_says(record, own: Key) -> str | None:
    if record.says is None:
        record.says = (_type_says(record), {c for c, v in record.values.items() if c in BUSINESS_SIBLINGS and v.strip()})
    typed, business = record.says
    if typed:
        return typed
    # a business-only sibling with a value (a null business_name says nothing), other than the field itself
    return "business" if len(business) > 1 or (business and own.compact not in business) else None


def _type_says(record) -> str | None:
    for compact, value in record.values.items():
        if compact in _TYPE_KEYS:
            v = value.strip().lower().replace(" ", "_")
            if v in _BUSINESS_TYPES:
                return "business"
            if v in _PERSON_TYPES:
                return "person"
    return None


def _resource_says(words: tuple) -> str | None:
    """People anywhere in the path (/merchants/1/customers) make it theirs; otherwise the collection
    the body is about, the last word (/v2/locations/L1, not /v2/locations/L1/transactions)."""
    if _PERSON_RESOURCES.intersection(words):
        return "person"
    if words and words[-1] in _BUSINESS_RESOURCES:
        return "business"
    return None
