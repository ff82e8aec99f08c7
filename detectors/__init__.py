"""Stage 1 and stage 2 detectors, one module per SPEC.md data type (contract: base.py)."""
from . import birth_date, card, driver_license, email, gender, iban, ip_address, location, person, phone, ssn
from .base import Detector

# Order matters in free text: an earlier detector's span is not offered to later ones
# (a card number is not also a phone number).
DETECTORS = tuple(Detector.of(m) for m in (email, iban, card, ssn, ip_address, birth_date, phone, driver_license,
                                              gender, location, person))
