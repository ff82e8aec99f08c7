"""Enforcement of redact and block rules in the proxy (SPEC.md section 9): the verdict on one request
(inline.py) and the rewriting of its parts (redact.py). sensor/sources/proxy.py applies them."""
