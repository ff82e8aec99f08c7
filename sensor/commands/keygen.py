"""`pii-sensor keygen --out PREFIX`: a key pair for encrypted evidence (SPEC.md section 9).
PREFIX.pub goes to the sensors (evidence.public_key); PREFIX.key stays with the investigator."""
from __future__ import annotations

import sys

from ..errors import InputError
from ..evidence import EvidenceError, keygen


def run(args) -> int:
    try:
        private, public = keygen(args.out)
    except EvidenceError as e:
        raise InputError(str(e)) from None
    print(f"pii-sensor: wrote {public} (configure it as evidence.public_key on the sensors) and {private} "
          "(the private key: keep it off the sensors; whoever holds it reads the evidence)", file=sys.stderr)
    return 0
