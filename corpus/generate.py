"""Deterministic generator of the labeled corpus (SPEC.md section 3).

    python corpus/generate.py [--count N] [--seed S] [--out corpus/labeled.har]

Builds HAR 1.2 entries over many API shapes (JSON, NDJSON, form, multipart, XML,
plain text, query strings, headers, URL paths), key styles (snake, camel, Pascal,
kebab), locales and encodings, each carrying `_pii_labels`. Hard negatives sit
beside the PII: Luhn-valid order and tracking ids, version strings, company and
product names, clothing sizes, non-birth dates, EINs and routing numbers.

Values come from Faker and phonenumbers with a fixed seed, so the same versions
give the same file byte for byte.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import random
import sys
import uuid
from pathlib import Path
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape

import phonenumbers
import yaml
from faker import Faker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sensor.payload.jsonpath import child  # noqa: E402  the same path syntax the sensor emits

LOCALES = {
    "en_US": "US", "en_GB": "GB", "de_DE": "DE", "fr_FR": "FR", "es_ES": "ES",
    "it_IT": "IT", "pt_BR": "BR", "nl_NL": "NL", "en_IN": "IN", "en_AU": "AU", "en_CA": "CA",
}
BASE_TIME = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.timezone.utc)


class L:
    """A labeled value: `types` are the SPEC.md types the value holds."""

    def __init__(self, types, value):
        self.types = [types] if isinstance(types, str) else list(types)
        self.value = value


# --- key styles -------------------------------------------------------------

def styled(name: str, style: str) -> str:
    words = name.split("_")
    if style == "camel":
        return words[0] + "".join(w.capitalize() for w in words[1:])
    if style == "pascal":
        return "".join(w.capitalize() for w in words)
    if style == "kebab":
        return "-".join(words)
    return name


def restyle(obj, style):
    if isinstance(obj, dict):
        return {styled(k, style): restyle(v, style) for k, v in obj.items()}
    if isinstance(obj, list):
        return [restyle(v, style) for v in obj]
    return obj


def unlabel(obj, path="$", labels=None):
    """Plain JSON value and its labels [(path, type)] from a tree holding L markers."""
    if labels is None:
        labels = []
    if isinstance(obj, L):
        labels.extend((path, t) for t in obj.types)
        return obj.value, labels
    if isinstance(obj, dict):
        return {k: unlabel(v, child(path, k), labels)[0] for k, v in obj.items()}, labels
    if isinstance(obj, list):
        return [unlabel(v, f"{path}[{i}]", labels)[0] for i, v in enumerate(obj)], labels
    return obj, labels


# --- values -----------------------------------------------------------------

class Values:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.fakers = {}
        for i, loc in enumerate(LOCALES):
            f = Faker(loc)
            f.seed_instance(rng.randrange(1 << 30) + i)
            self.fakers[loc] = f
        self.us = self.fakers["en_US"]

    def locale(self):
        return self.rng.choice(list(LOCALES))

    def phone(self, loc):
        region = LOCALES[loc]
        kind = self.rng.choice([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE])
        example = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(region)
        e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
        num = example
        for _ in range(50):
            trial = phonenumbers.parse(e164[:-4] + "".join(str(self.rng.randrange(10)) for _ in range(4)))
            if phonenumbers.is_valid_number(trial):
                num = trial
                break
        fmt = self.rng.choice([phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                               phonenumbers.PhoneNumberFormat.NATIONAL])
        return phonenumbers.format_number(num, fmt)

    def birth_day(self):
        """A date of birth from the seeded generator (Faker's depends on today's date)."""
        return dt.date(1935, 1, 1) + dt.timedelta(days=self.rng.randrange(0, 70 * 365))

    def birth(self):
        d = self.birth_day()
        fmt = self.rng.choice(["iso", "us", "eu", "dotted", "long", "short", "dmy_long", "unix", "unix_ms", "iso_time"])
        if fmt == "iso":
            return d.isoformat()
        if fmt == "us":
            return d.strftime("%m/%d/%Y")
        if fmt == "eu":
            return d.strftime("%d/%m/%Y")
        if fmt == "dotted":
            return d.strftime("%d.%m.%Y")
        if fmt == "long":
            return d.strftime("%B %-d, %Y")
        if fmt == "short":
            return d.strftime("%b %-d, %Y")
        if fmt == "dmy_long":
            return d.strftime("%-d %B %Y")
        ts = int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc).timestamp())
        if fmt == "unix":
            return ts
        if fmt == "unix_ms":
            return ts * 1000
        return d.isoformat() + "T00:00:00Z"

    def gender(self):
        return self.rng.choice(["male", "female", "M", "F", "Female", "Male", "non-binary", "other", "FEMALE", "m", "f", "diverse"])

    def card(self):
        number = self.us.credit_card_number(card_type=self.rng.choice(["visa16", "mastercard", "amex", "discover", "jcb16", "visa13"]))
        style = self.rng.random()
        if style < 0.35 and len(number) == 16:
            number = " ".join(number[i:i + 4] for i in range(0, 16, 4))
        elif style < 0.5 and len(number) == 16:
            number = "-".join(number[i:i + 4] for i in range(0, 16, 4))
        return number

    def luhn_id(self, length=16):
        """A Luhn-valid number that is an order or tracking id, not a card."""
        while True:
            body = [self.rng.randrange(10) for _ in range(length - 1)]
            total = 0
            for i, d in enumerate(reversed(body)):
                d = d * 2 if i % 2 == 0 else d
                total += d - 9 if d > 9 else d
            n = "".join(map(str, body)) + str((10 - total % 10) % 10)
            if n[0] != "0":
                return n

    def ssn(self):
        while True:
            s = self.us.ssn()
            if not s.startswith(("9", "666", "000")):
                return s

    def iban(self, loc):
        country = LOCALES[loc] if LOCALES[loc] in ("GB", "DE", "FR", "ES", "IT", "NL", "BR") else "DE"
        f = self.fakers.get({"GB": "en_GB", "DE": "de_DE", "FR": "fr_FR", "ES": "es_ES", "IT": "it_IT", "NL": "nl_NL", "BR": "pt_BR"}[country])
        iban = f.iban()
        if self.rng.random() < 0.5:
            iban = " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
        return iban

    def driver_license(self):
        r = self.rng
        d = lambda n: "".join(str(r.randrange(10)) for _ in range(n))  # noqa: E731
        a = lambda: r.choice("ABCDEFGHJKLMNPRSTWXYZ")  # noqa: E731
        state, number = r.choice([
            ("CA", a() + d(7)), ("NY", d(9)), ("TX", d(8)), ("FL", f"{a()}{d(3)}-{d(3)}-{d(2)}-{d(3)}-{d(1)}"),
            ("IL", f"{a()}{d(3)}-{d(4)}-{d(4)}"), ("PA", d(8)), ("WA", "WDL" + "".join(r.choice("ABCDEFGHJKLMNPRSTWXYZ0123456789") for _ in range(9))),
            ("NJ", a() + d(14)), ("MI", a() + d(12)), ("OH", a() + a() + d(6)), ("GA", d(9)), ("MA", "S" + d(8)),
            ("AZ", a() + d(8)), ("CO", d(2) + "-" + d(3) + "-" + d(4)), ("VA", a() + d(8)), ("WI", a() + d(13)),
        ])
        return state, number

    def ip(self):
        return self.us.ipv4_public() if self.rng.random() < 0.8 else self.us.ipv6()

    def version(self):
        r = self.rng
        return ".".join(str(r.randrange(0, 20)) for _ in range(r.choice([3, 4, 4])))

    def company(self, loc):
        return self.fakers[loc].company()

    def product(self):
        r = self.rng
        return f"{r.choice(['Ultra', 'Pro', 'Classic', 'Eco', 'Smart', 'Trail', 'Urban', 'Nova'])} {r.choice(['Runner', 'Blender', 'Backpack', 'Headphones', 'Jacket', 'Lamp', 'Kettle', 'Watch'])} {r.choice(['2', 'X', 'Max', 'Lite', '3000', ''])}".strip()

    def ein(self):
        return f"{self.rng.randrange(10, 99)}-{self.rng.randrange(1000000, 9999999)}"

    def aba(self):
        return self.us.aba()

    def other_date(self):
        d = BASE_TIME + dt.timedelta(days=self.rng.randrange(-900, 60), seconds=self.rng.randrange(86400))
        return self.rng.choice([d.isoformat().replace("+00:00", "Z"), d.date().isoformat(), d.strftime("%m/%d/%Y")])


# --- the shapes of API traffic --------------------------------------------------

class Builder:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.v = Values(self.rng)
        self.entries = []

    # person pieces shared by many shapes
    def person(self, loc, style, with_address=True, flat=False):
        f, r, v = self.v.fakers[loc], self.rng, self.v
        first, last = f.first_name(), f.last_name()
        p = {}
        if r.random() < 0.5:
            p["first_name"] = L("Person", first)
            p["last_name"] = L("Person", last)
        else:
            p[r.choice(["name", "full_name", "display_name", "name"])] = L("Person", f"{first} {last}")
        p["email"] = L("Email", f.email() if r.random() < 0.7 else f"{first}.{last}@{f.free_email_domain()}".lower().replace(" ", ""))
        if r.random() < 0.8:
            p[r.choice(["phone", "mobile", "phone_number", "tel", "mobile_phone"])] = L("Phone", v.phone(loc))
        if r.random() < 0.6:
            p[r.choice(["dob", "date_of_birth", "birth_date", "birthday", "birthdate"])] = L("Birth date", v.birth())
        if r.random() < 0.5:
            p[r.choice(["gender", "sex"])] = L("Gender", v.gender())
        if r.random() < 0.3:
            p["locale"] = loc.replace("_", "-")
        if with_address:
            addr = self.address(loc)
            if flat:
                p.update(addr)
            else:
                p[r.choice(["address", "home_address", "shipping_address", "residence", "postal_address"])] = addr
        return p

    def address(self, loc):
        f, r = self.v.fakers[loc], self.rng
        a = {}
        if r.random() < 0.6:
            a[r.choice(["street", "address_line1", "line1", "street_address"])] = L("Location", f.street_address())
        else:
            a["street"] = L("Location", f.street_name())
            a["house_number"] = L("Location", f.building_number())
        a[r.choice(["city", "town", "city"])] = L("Location", f.city())
        a[r.choice(["postal_code", "zip", "postcode", "zip_code"])] = L("Location", f.postcode())
        if r.random() < 0.5 and loc in ("en_US", "en_AU", "en_CA", "en_IN"):
            a[r.choice(["state", "region", "province"])] = L("Location", f.state_abbr() if loc == "en_US" else f.state() if hasattr(f, "state") else f.city())
        if r.random() < 0.7:
            a["country"] = L("Location", r.choice([LOCALES[loc], f.current_country()]))
        if r.random() < 0.2:
            a["geo"] = {"lat": L("Location", float(f.latitude())), "lng": L("Location", float(f.longitude()))}
        return a

    def add(self, method, url, req=None, resp=None, req_headers=(), resp_headers=(), labels=(), status=200,
            req_type="application/json", resp_type="application/json", base64_resp=False, server_ip=None, extra_resp_headers=()):
        """One HAR entry; `labels` are dicts in the SPEC.md section 3 shape."""
        n = len(self.entries)
        when = BASE_TIME + dt.timedelta(seconds=n * 7 + self.rng.randrange(5), milliseconds=self.rng.randrange(1000))
        headers = [{"name": "Host", "value": url.split("/")[2]}, {"name": "User-Agent", "value": f"svc-client/{self.v.version()}"}]
        if req is not None:
            headers.append({"name": "Content-Type", "value": req_type})
        headers += [{"name": k, "value": v} for k, v in req_headers]
        request = {"method": method, "url": url, "httpVersion": "HTTP/1.1", "headers": headers, "queryString": [],
                   "cookies": [], "headersSize": -1, "bodySize": len(req or "")}
        if req is not None:
            request["postData"] = {"mimeType": req_type, "text": req}
        content = {"size": len(resp or ""), "mimeType": resp_type}
        if resp is not None:
            if base64_resp:
                content["text"] = base64.b64encode(resp.encode()).decode()
                content["encoding"] = "base64"
            else:
                content["text"] = resp
        rh = [{"name": "Content-Type", "value": resp_type}] + [{"name": k, "value": v} for k, v in list(resp_headers) + list(extra_resp_headers)]
        entry = {
            "startedDateTime": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "time": self.rng.randrange(2, 300),
            "request": request,
            "response": {"status": status, "statusText": "OK", "httpVersion": "HTTP/1.1", "headers": rh, "cookies": [],
                         "content": content, "redirectURL": "", "headersSize": -1, "bodySize": content["size"]},
            "cache": {}, "timings": {"send": 0, "wait": 1, "receive": 0},
        }
        if server_ip or self.rng.random() < 0.7:
            entry["serverIPAddress"] = server_ip or f"10.96.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"
        if labels:
            entry["_pii_labels"] = [dict(x) for x in labels]
        self.entries.append(entry)

    def json_labels(self, part, tree, style):
        body, labels = unlabel(restyle(tree, style))
        return json.dumps(body, ensure_ascii=self.rng.random() < 0.3), [{"part": part, "path": p, "type": t} for p, t in labels]

    def host(self):
        return self.rng.choice(["users.internal", "api.shop.example", "billing-svc", "crm.internal:8443", "api.partner.example.com",
                                "identity.svc.cluster.local", "orders-api:8080", "payments.internal", "hr.corp.example"])

    def style(self):
        return self.rng.choice(["snake", "snake", "camel", "camel", "pascal", "kebab"])

    # --- shapes ---

    def signup(self):
        loc, style = self.v.locale(), self.style()
        wrap = self.rng.choice(["customer", "user", "profile", "data", None, "contact", "account_holder", "patient", "member"])
        person = self.person(loc, style, with_address=self.rng.random() < 0.7, flat=self.rng.random() < 0.3)
        if self.rng.random() < 0.4:
            person["signup_ip"] = L("IP address", self.v.ip())
        tree = {wrap: person} if wrap else person
        tree["source"] = self.rng.choice(["web", "ios", "android"])
        tree["app_version"] = self.v.version()
        tree["created_at"] = self.v.other_date()
        body, labels = self.json_labels("request.body", tree, style)
        uid = self.rng.randrange(1000, 99999)
        resp_tree = {"id": uid, "status": "created", "updated_at": self.v.other_date()}
        if self.rng.random() < 0.4:  # APIs echo the record back
            resp_tree["user"] = person
        resp, rlabels = self.json_labels("response.body", resp_tree, style)
        self.add("POST", f"http://{self.host()}/v1/{self.rng.choice(['users', 'customers', 'signup', 'members'])}", body, resp, labels=labels + rlabels, status=201)

    def payment(self):
        loc, style = self.v.locale(), self.style()
        f, r, v = self.v.fakers[loc], self.rng, self.v
        card = {r.choice(["number", "card_number", "pan", "cc_number"]): L("Card", v.card())}
        if r.random() < 0.5:
            card[r.choice(["expiry", "exp", "expiration"])] = L("Card", f"{r.randrange(1, 13):02d}/{r.randrange(27, 32)}")
        else:
            card["exp_month"] = L("Card", r.randrange(1, 13))
            card["exp_year"] = L("Card", r.randrange(2027, 2032))
        if r.random() < 0.7:
            card[r.choice(["cardholder_name", "holder_name", "name_on_card", "cardholder"])] = L("Person", f.name().upper() if r.random() < 0.4 else f.name())
        card["brand"] = r.choice(["visa", "mastercard", "amex"])
        tree = {
            "order_id": v.luhn_id(16),
            "amount": round(r.uniform(5, 900), 2),
            "currency": r.choice(["USD", "EUR", "GBP"]),
            r.choice(["card", "payment_method", "source", "credit_card"]): card,
        }
        if r.random() < 0.5:
            tree["billing_address"] = self.address(loc)
        if r.random() < 0.4:
            tree["customer_email"] = L("Email", f.email())
        if r.random() < 0.3:
            tree["client_ip"] = L("IP address", v.ip())
        body, labels = self.json_labels("request.body", tree, style)
        resp_tree = {"payment_id": str(uuid.UUID(int=r.getrandbits(128))), "status": "succeeded",
                     "tracking_number": v.luhn_id(r.choice([16, 18, 19])), "reference": v.luhn_id(15)}
        resp, rl = self.json_labels("response.body", resp_tree, style)
        self.add("POST", f"https://{r.choice(['payments.internal', 'api.stripe-like.example.com', 'checkout-svc'])}/v2/charges", body, resp, labels=labels + rl)

    def transfer(self):
        loc, style = self.v.locale(), self.style()
        f, r, v = self.v.fakers[loc], self.rng, self.v
        tree = {
            "beneficiary": {"name": L("Person", f.name()), "iban": L("IBAN", v.iban(loc))},
            "debtor_account": {"iban": L("IBAN", v.iban(loc))},
            "routing_number": v.aba(),
            "amount": {"value": round(r.uniform(10, 5000), 2), "currency": "EUR"},
            "reference": f"INV-{r.randrange(10000, 99999)}",
            "execution_date": self.v.other_date(),
        }
        if r.random() < 0.4:
            tree["remittance_info"] = f"Invoice {r.randrange(1000, 9999)} for {v.company(loc)}"
        body, labels = self.json_labels("request.body", tree, style)
        resp, _ = self.json_labels("response.body", {"transfer_id": r.randrange(10**8, 10**9), "state": "pending"}, style)
        self.add("POST", f"https://{r.choice(['bank-gw.internal', 'api.openbanking.example.eu'])}/transfers", body, resp, labels=labels)

    def kyc(self):
        style = self.style()
        f, r, v = self.v.us, self.rng, self.v
        state, dl = v.driver_license()
        tree = {
            "applicant": {
                "first_name": L("Person", f.first_name()), "last_name": L("Person", f.last_name()),
                r.choice(["ssn", "social_security_number", "ssn_number", "tax_id"]): L("SSN", v.ssn() if r.random() < 0.7 else v.ssn().replace("-", "")),
                r.choice(["dob", "date_of_birth"]): L("Birth date", v.birth()),
                r.choice(["driver_license", "drivers_license_number", "dl_number", "license_number"]): L("Driver license", dl),
                r.choice(["license_state", "dl_state", "state"]): state,
            },
            "employer": {"name": v.company("en_US"), "ein": v.ein(), "website": f.domain_name()},
            "bank": {"routing_number": v.aba(), "account_type": "checking"},
            "submitted_at": v.other_date(),
        }
        body, labels = self.json_labels("request.body", tree, style)
        resp, _ = self.json_labels("response.body", {"check_id": str(uuid.UUID(int=r.getrandbits(128))), "result": r.choice(["clear", "consider"])}, style)
        self.add("POST", f"https://{r.choice(['kyc.internal', 'api.verify.example.com'])}/v1/checks", body, resp, labels=labels)

    def order(self):
        loc, style = self.v.locale(), self.style()
        f, r, v = self.v.fakers[loc], self.rng, self.v
        items = [{"sku": f"SKU-{r.randrange(10000, 99999)}", "name": v.product(), "size": r.choice(["S", "M", "L", "XL", "M"]),
                  "qty": r.randrange(1, 4), "price": round(r.uniform(3, 300), 2), "brand": v.company(loc)} for _ in range(r.randrange(1, 5))]
        ship = {"recipient": L("Person", f.name()), **self.address(loc)}
        if r.random() < 0.5:
            ship["phone"] = L("Phone", v.phone(loc))
        tree = {"order": {"id": v.luhn_id(16), "tracking_number": v.luhn_id(r.choice([16, 18])), "status": "shipped",
                          "delivery_date": v.other_date(), "created_at": v.other_date(), "items": items,
                          "shipping": ship, "carrier": r.choice(["UPS", "DHL Express", "FedEx"])}}
        resp, labels = self.json_labels("response.body", tree, style)
        oid = r.randrange(10**5, 10**7)
        self.add("GET", f"http://{self.host()}/v1/orders/{oid}", None, resp, labels=labels)

    def company(self):
        loc, style = self.v.locale(), self.style()
        f, r, v = self.v.fakers[loc], self.rng, self.v
        tree = {"company": {"name": v.company(loc), "ein": v.ein(), "website": f"https://{f.domain_name()}", "industry": r.choice(["retail", "saas", "logistics"]),
                            "employees": r.randrange(5, 5000), "founded": r.randrange(1950, 2024)},
                "products": [{"name": v.product(), "sku": f"P{r.randrange(1000, 9999)}", "version": v.version(), "price": round(r.uniform(1, 99), 2)} for _ in range(r.randrange(1, 4))],
                "contact": {"name": L("Person", f.name()), "email": L("Email", f.email())} if r.random() < 0.5 else None}
        if tree["contact"] is None:
            del tree["contact"]
        body, labels = self.json_labels("request.body", tree, style)
        self.add("PUT", f"https://{r.choice(['vendors.internal', 'crm.internal'])}/api/vendors/{r.randrange(100, 999)}", body, "{}", labels=labels)

    def telemetry(self):
        style = self.style()
        r, v = self.rng, self.v
        events = []
        labels = []
        for _ in range(r.randrange(2, 6)):
            ev = {"event": r.choice(["page_view", "click", "login", "purchase"]), "ts": int((BASE_TIME.timestamp() + r.randrange(10**6)) * 1000),
                  "app_version": v.version(), "os_version": v.version(), "sdk": {"version": v.version()}, "session_id": uuid.UUID(int=r.getrandbits(128)).hex,
                  "device": {"model": r.choice(["Pixel 8", "iPhone15,2", "SM-G991B"]), "screen": "1080x2400"}}
            if r.random() < 0.6:
                ev["client_ip"] = L("IP address", v.ip())
            if r.random() < 0.3:
                ev["user"] = {"email": L("Email", v.us.email())}
            events.append(ev)
        ndjson = r.random() < 0.4
        if ndjson:
            lines = []
            for i, ev in enumerate(events):
                body, lb = unlabel(restyle(ev, style), f"$[{i}]")
                lines.append(json.dumps(body))
                labels += [{"part": "request.body", "path": p, "type": t} for p, t in lb]
            self.add("POST", f"http://{r.choice(['collector.internal', 'events-ingest:4318'])}/v1/events", "\n".join(lines) + "\n", "", labels=labels,
                     req_type=r.choice(["application/x-ndjson", "application/jsonl"]), status=204, resp_type="text/plain")
        else:
            body, labels = self.json_labels("request.body", {"batch": events}, style)
            self.add("POST", f"http://{r.choice(['collector.internal', 'analytics.example.com'])}/track", body, '{"ok":true}', labels=labels,
                     req_headers=[("X-Forwarded-For", v.us.ipv4_public())], status=200)
            self.entries[-1]["_pii_labels"] = labels + [{"part": "request.headers", "path": "$['x-forwarded-for']", "type": "IP address"}]

    def form(self):
        loc = self.v.locale()
        f, r, v = self.v.fakers[loc], self.rng, self.v
        fields = [("name", L("Person", f.name())), ("email", L("Email", f.email()))]
        if r.random() < 0.6:
            fields.append(("phone", L("Phone", v.phone(loc))))
        if r.random() < 0.5:
            fields.append(("message", L(["Person"], self.ticket_text(loc, only_name=True)) if r.random() < 0.3 else f"Question about plan {r.choice(['Pro', 'Team', 'Basic'])}"))
        fields += [("csrf_token", uuid.UUID(int=r.getrandbits(128)).hex), ("plan", r.choice(["pro", "team"])), ("newsletter", "on")]
        body = urlencode([(k, x.value if isinstance(x, L) else x) for k, x in fields])
        labels = [{"part": "request.body", "path": child("$", k), "type": t} for k, x in fields if isinstance(x, L) for t in x.types]
        self.add("POST", f"https://{r.choice(['www.shop.example', 'forms.internal'])}/contact", body, "<html><body>Thanks!</body></html>",
                 labels=labels, req_type="application/x-www-form-urlencoded", resp_type="text/html; charset=utf-8")

    def multipart(self):
        loc = self.v.locale()
        f, r = self.v.fakers[loc], self.rng
        boundary = f"----WebKitFormBoundary{uuid.UUID(int=r.getrandbits(128)).hex[:16]}"
        parts = [("first_name", L("Person", f.first_name())), ("last_name", L("Person", f.last_name())), ("email", L("Email", f.email())),
                 ("city", L("Location", f.city())), ("zip", L("Location", f.postcode())), ("bio", "Loves hiking and coffee."), ("plan", "basic")]
        chunks = []
        for k, x in parts:
            val = x.value if isinstance(x, L) else x
            chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{val}\r\n')
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="avatar"; filename="me.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n\x00\x00\r\n')
        chunks.append(f"--{boundary}--\r\n")
        labels = [{"part": "request.body", "path": child("$", k), "type": t} for k, x in parts if isinstance(x, L) for t in x.types]
        self.add("POST", f"http://{self.host()}/v1/profile", "".join(chunks), '{"saved":true}', labels=labels,
                 req_type=f"multipart/form-data; boundary={boundary}")

    def soap(self):
        loc = "en_US" if self.rng.random() < 0.5 else self.v.locale()
        f, r, v = self.v.fakers[loc], self.rng, self.v
        cid = r.randrange(10**5, 10**6)
        name, email, phone, street, city = f.name(), f.email(), v.phone(loc), f.street_address(), f.city()
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:c="urn:crm">'
            f'<soap:Body><c:UpdateCustomer><c:Customer id="{cid}"><c:Name>{escape(name)}</c:Name><c:Email>{escape(email)}</c:Email>'
            f'<c:Phone type="mobile">{escape(phone)}</c:Phone><c:Address><c:Street>{escape(street)}</c:Street><c:City>{escape(city)}</c:City></c:Address>'
            f'<c:AccountManager>{escape(v.company(loc))}</c:AccountManager><c:Version>{v.version()}</c:Version></c:Customer></c:UpdateCustomer></soap:Body></soap:Envelope>'
        )
        base = "$.Envelope.Body.UpdateCustomer.Customer"
        labels = [{"part": "request.body", "path": f"{base}.{p}", "type": t} for p, t in
                  [("Name", "Person"), ("Email", "Email"), ("Phone", "Phone"), ("Address.Street", "Location"), ("Address.City", "Location")]]
        self.add("POST", f"http://{r.choice(['crm-soap.internal:8080', 'legacy-crm'])}/services/CustomerService", xml,
                 '<?xml version="1.0"?><Result><Status>OK</Status></Result>', labels=labels, req_type="text/xml; charset=utf-8", resp_type="application/xml",
                 req_headers=[("SOAPAction", "urn:UpdateCustomer")])

    def query(self):
        loc = self.v.locale()
        f, r, v = self.v.fakers[loc], self.rng, self.v
        params = r.choice([
            [("email", L("Email", f.email())), ("page", "1")],
            [("phone", L("Phone", v.phone(loc))), ("country", LOCALES[loc])],
            [("q", "running shoes"), ("size", "M"), ("sort", "price"), ("v", v.version())],
            [("customer_name", L("Person", f.name())), ("limit", "20")],
            [("zip", L("Location", f.postcode())), ("city", L("Location", f.city())), ("radius_km", "10")],
            [("ip", L("IP address", v.ip())), ("include", "geo")],
            [("order_id", v.luhn_id(16)), ("since", v.other_date())],
        ])
        qs = urlencode([(k, x.value if isinstance(x, L) else x) for k, x in params])
        labels = [{"part": "request.query", "path": child("$", k), "type": t} for k, x in params if isinstance(x, L) for t in x.types]
        self.add("GET", f"https://{self.host()}/api/{r.choice(['search', 'lookup', 'customers', 'stores/nearby'])}?{qs}", None,
                 json.dumps({"results": [], "total": 0}), labels=labels)

    def path_pii(self):
        loc = self.v.locale()
        f, r, v = self.v.fakers[loc], self.rng, self.v
        kind = r.choice(["email", "email", "phone", "ip", "id"])
        if kind == "email":
            email = f.email()
            url = f"http://{self.host()}/v1/users/{quote(email, safe='@') if r.random() < 0.5 else quote(email)}/preferences"
            labels = [{"part": "request.path", "path": "$", "type": "Email"}]
        elif kind == "phone":
            phone = phonenumbers.format_number(phonenumbers.parse(v.phone(loc), LOCALES[loc]), phonenumbers.PhoneNumberFormat.E164)
            url = f"http://{self.host()}/v2/lookup/phone/{quote(phone)}"
            labels = [{"part": "request.path", "path": "$", "type": "Phone"}]
        elif kind == "ip":
            url = f"http://{r.choice(['geoip.internal', 'fraud-svc'])}/ip/{v.us.ipv4_public()}/score"
            labels = [{"part": "request.path", "path": "$", "type": "IP address"}]
        else:
            url = f"http://{self.host()}/v1/accounts/{r.randrange(10**6)}/invoices/{uuid.UUID(int=r.getrandbits(128))}"
            labels = []
        self.add("GET", url, None, json.dumps({"ok": True, "version": v.version()}), labels=labels)

    def headers(self):
        r, v = self.rng, self.v
        hs, labels = [], []
        kind = r.choice(["xff", "xreal", "forwarded", "custom", "cookie"])
        if kind == "xff":
            hs.append(("X-Forwarded-For", ", ".join(v.us.ipv4_public() for _ in range(r.randrange(1, 3)))))
            labels.append({"part": "request.headers", "path": "$['x-forwarded-for']", "type": "IP address"})
        elif kind == "xreal":
            hs.append(("X-Real-IP", v.ip()))
            labels.append({"part": "request.headers", "path": "$['x-real-ip']", "type": "IP address"})
        elif kind == "forwarded":
            hs.append(("Forwarded", f"for={v.us.ipv4_public()};proto=https;by=10.0.0.{r.randrange(1, 254)}"))
            labels.append({"part": "request.headers", "path": "$['forwarded']", "type": "IP address"})
        elif kind == "custom":
            hs.append(("X-User-Email", v.us.email()))
            labels.append({"part": "request.headers", "path": "$['x-user-email']", "type": "Email"})
        else:
            hs.append(("Cookie", f"sid={uuid.UUID(int=r.getrandbits(128)).hex}; last_email={quote(v.us.email())}; theme=dark"))
            labels.append({"part": "request.headers", "path": "$['cookie']", "type": "Email"})
        hs.append(("X-Client-Version", v.version()))
        hs.append(("X-Request-Id", str(uuid.UUID(int=r.getrandbits(128)))))
        self.add("GET", f"http://{self.host()}/v1/feed?page={r.randrange(1, 9)}", None, json.dumps({"items": []}), req_headers=hs, labels=labels)

    def ticket_text(self, loc, only_name=False):
        f, r = self.v.fakers["en_US"], self.rng
        name = f.name()
        if only_name:
            return r.choice([f"Hello, my name is {name} and I have a question about billing.", f"This is {name}, please cancel my subscription.",
                             f"Hi team, {name} here. The app keeps crashing."])
        return name

    def support(self):
        f, r, v = self.v.us, self.rng, self.v
        name, email, phone = f.name(), f.email(), v.phone("en_US")
        templates = [
            (f"Hi, my name is {name}. Please call me back at {phone} about my refund.", ["Person", "Phone"]),
            (f"Customer {name} ({email}) reports that order {v.luhn_id(16)} never arrived.", ["Person", "Email"]),
            (f"I moved, please send the replacement to {f.street_address()}, {f.city()}.", ["Location"]),
            (f"My SSN is {v.ssn()} and my date of birth is {v.birth_day().strftime('%m/%d/%Y')}.", ["SSN", "Birth date"]),
            (f"Payment failed for card {v.card()}, please advise. Thanks, {name}", ["Card", "Person"]),
            (f"The checkout page is slow since release {v.version()}. Ticket opened by the web team.", []),
            (f"Order {v.luhn_id(16)} shipped via {r.choice(['UPS', 'DHL'])} with tracking {v.luhn_id(18)}.", []),
            (f"Please update my email to {email} and my phone to {phone}.", ["Email", "Phone"]),
            (f"Login from {v.us.ipv4_public()} was flagged as suspicious.", ["IP address"]),
            (f"We loved the {v.product()} from {v.company('en_US')}! Five stars.", []),
            (f"Wire the refund to {v.iban('de_DE')} please, {name}.", ["IBAN", "Person"]),
        ]
        text, types = r.choice(templates)
        style = self.style()
        key = r.choice(["message", "description", "comment", "body", "note"])
        if r.random() < 0.3:
            self.add("POST", f"https://{r.choice(['support.internal', 'helpdesk.example.com'])}/tickets", text, "", labels=[
                {"part": "request.body", "path": "$", "type": t} for t in types], req_type="text/plain; charset=utf-8", status=202, resp_type="text/plain")
            return
        tree = {"ticket": {"subject": r.choice(["Refund", "Help", "Account"]), key: L(types, text) if types else text, "priority": r.choice(["low", "high"]),
                           "created_at": v.other_date()}}
        body, labels = self.json_labels("request.body", tree, style)
        self.add("POST", f"https://{r.choice(['support.internal', 'helpdesk.example.com'])}/api/tickets", body, json.dumps({"id": r.randrange(10**5)}), labels=labels)

    def compressed_and_base64(self):
        """HAR semantics: decoded bodies even with Content-Encoding; binary as base64."""
        loc, style = self.v.locale(), self.style()
        person = self.person(loc, style, with_address=False)
        resp, labels = self.json_labels("response.body", {"results": [person], "next": None}, style)
        if self.rng.random() < 0.5:
            self.add("GET", f"https://{self.host()}/v1/users?page=1", None, resp, labels=labels,
                     resp_headers=[("Content-Encoding", self.rng.choice(["gzip", "br", "zstd", "deflate"]))])
        else:
            self.add("GET", f"https://{self.host()}/v1/users/export", None, resp, labels=labels, base64_resp=True)

    def location_ping(self):
        f, r, v = self.v.us, self.rng, self.v
        style = self.style()
        tree = {"driver_id": r.randrange(1000, 9999), "position": {"latitude": L("Location", float(f.latitude())), "longitude": L("Location", float(f.longitude()))},
                "speed_kmh": round(r.uniform(0, 90), 1), "battery": r.randrange(5, 100), "recorded_at": v.other_date()}
        body, labels = self.json_labels("request.body", tree, style)
        self.add("POST", f"http://{r.choice(['fleet.internal', 'tracking-svc'])}/v1/pings", body, "", labels=labels, status=204)

    def negatives(self):
        """Traffic without personal data that still looks like it."""
        r, v = self.rng, self.v
        style = self.style()
        tree = r.choice([
            {"status": "ok", "version": v.version(), "build": v.version(), "uptime_seconds": r.randrange(10**6), "node": f"10.0.{r.randrange(255)}.{r.randrange(255)}"},
            {"products": [{"name": v.product(), "brand": v.company("en_US"), "sizes": ["S", "M", "L"], "sku": f"SKU{r.randrange(10**5)}", "price": r.randrange(10, 300)} for _ in range(3)]},
            {"invoice": {"number": v.luhn_id(16), "issued": v.other_date(), "due_date": v.other_date(), "total": r.randrange(100, 9999), "vendor": v.company("en_GB")}},
            {"shipment": {"tracking_number": v.luhn_id(18), "carrier": "DHL", "estimated_delivery": v.other_date(), "weight_kg": round(r.uniform(0.1, 30), 2)}},
            {"company": {"legal_name": v.company("en_US"), "ein": v.ein(), "routing_number": v.aba(), "website": v.us.url()}},
            {"experiment": {"name": "checkout_v2", "variant": "B", "started": v.other_date(), "sample_rate": 0.25}},
            {"deploy": {"service": "users-api", "image": f"registry.example/users:{v.version()}", "git_sha": uuid.UUID(int=r.getrandbits(128)).hex[:12], "region": "us-east-1", "state": "running"}},
            {"shirt": {"size": "M", "color": "navy", "gender_fit": None, "model": v.product()}},
            {"stats": {"count": r.randrange(10**9), "p99_ms": r.randrange(1, 900), "date": v.other_date()}},
        ])
        body, _ = self.json_labels("response.body", tree, style)
        self.add("GET", f"http://{self.host()}/v1/{r.choice(['health', 'catalog', 'invoices/latest', 'shipments/latest', 'meta', 'experiments'])}", None, body)


SHAPES = [("signup", 14), ("payment", 9), ("transfer", 5), ("kyc", 6), ("order", 8), ("company", 5), ("telemetry", 7), ("form", 6),
          ("multipart", 4), ("soap", 4), ("query", 7), ("path_pii", 5), ("headers", 6), ("support", 9), ("compressed_and_base64", 4),
          ("location_ping", 3), ("negatives", 10)]


def generate(count: int, seed: int) -> dict:
    b = Builder(seed)
    names, weights = zip(*SHAPES)
    while len(b.entries) < count:
        getattr(b, b.rng.choices(names, weights)[0])()
    return {"log": {"version": "1.2", "creator": {"name": "pii-sensor corpus generator", "version": "1"}, "entries": b.entries}}


def tricky(cases: list[dict]) -> dict:
    """HAR for the hand-written cases of tricky.yaml."""
    b = Builder(0)
    for case in cases:
        req, resp = case.get("request") or {}, case.get("response") or {}
        b.add(case["method"], case["url"], req.get("body"), resp.get("body", ""),
              req_headers=list((req.get("headers") or {}).items()), resp_headers=list((resp.get("headers") or {}).items()),
              labels=[{"part": p, "path": path, "type": t} for p, path, t in case.get("labels") or []],
              status=resp.get("status", 200), req_type=req.get("content_type", "application/json"),
              resp_type=resp.get("content_type", "application/json"))
        b.entries[-1]["comment"] = case["name"]
    return {"log": {"version": "1.2", "creator": {"name": "pii-sensor tricky cases", "version": "1"}, "entries": b.entries}}


def write(doc: dict, path: Path) -> None:
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    labels = sum(len(e.get("_pii_labels", [])) for e in doc["log"]["entries"])
    print(f"wrote {path}: {len(doc['log']['entries'])} entries, {labels} labels", file=sys.stderr)


def main():
    if os.environ.get("PYTHONHASHSEED") != "0":
        # some Faker providers pick from sets, whose order follows string hashing: fix it
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=20261122)
    ap.add_argument("--out", default=str(here / "labeled.har"))
    args = ap.parse_args()
    write(generate(args.count, args.seed), Path(args.out))
    write(tricky(yaml.safe_load((here / "tricky.yaml").read_text(encoding="utf-8"))), Path(args.out).with_name("tricky.har"))


if __name__ == "__main__":
    main()
