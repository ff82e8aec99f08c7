"""Imported by the classifier workers' fork server (multiprocessing's forkserver preload): the
engine's modules and spaCy's model are loaded once there, and every worker forked from it shares
their memory (copy-on-write) instead of loading its own copy."""
from detectors import names, nlp

from . import engine  # noqa: F401

names.lexicons()  # the name lists of free text and of the names events mask
try:
    nlp.pipeline()
except Exception:  # noqa: BLE001 - a worker that needs spaCy loads it, or fails, on its own
    pass
# The garbage collector writes to every object it visits, which would copy each shared page into
# each worker; what is loaded by now lives as long as the workers, so take it out of its sight.
nlp.settle()
