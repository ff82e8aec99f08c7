"""Encrypted evidence (SPEC.md section 9): a finding's raw value sealed to the investigator's
public key, so that events carry it and only the holder of the private key can read it.

The scheme is a sealed box: X25519 between a fresh ephemeral key and the recipient's key,
HKDF-SHA256 to a ChaCha20-Poly1305 key, the finding's place in its event as associated data.
A key agreement costs about 25 times as much as sealing one value, so one ephemeral key serves
every finding sealed within KEY_SECONDS (at most KEY_USES of them), each with its own nonce:
under load the agreement is spread over many events, and when traffic is quiet each event gets
its own. The sensor holds only the public key; the ephemeral secret is dropped at once, and the
derived key within KEY_SECONDS: past that, nothing the sensor keeps opens what it sealed.

A blob is base64url (no padding) of

    version (1 byte) || ephemeral public key (32) || nonce (12) || ciphertext + tag (16)

and the plaintext is the value in UTF-8, padded (ISO/IEC 7816-4: 0x80 then zeros) to a
multiple of PAD bytes, so the blob's length says the value's length only to within PAD.
"""
from __future__ import annotations

import base64
import binascii
import os
import threading
import time

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = 1
PAD = 32  # bytes: values of 0..31 bytes all seal to the same length
_KEY, _NONCE, _TAG = 32, 12, 16
_HEAD = 1 + _KEY + _NONCE
_INFO = b"pii-sensor evidence v1"
KEY_SECONDS = 1.0  # how long a derived key may serve: what a memory dump of the sensor could open
KEY_USES = 4096  # ... and for how many values at most


class EvidenceError(Exception):
    """A key that cannot be used, or a blob that cannot be opened. Messages never quote a value."""


# --- keys -------------------------------------------------------------------------

def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(64 << 10)  # a PEM key is a few hundred bytes
    except OSError as e:
        raise EvidenceError(f"{path}: cannot read {what}: {e.strerror or type(e).__name__}") from None


def load_public_key(path: str) -> bytes:
    """The raw 32 bytes of an X25519 public key in a PEM file (SubjectPublicKeyInfo). Bytes, not a
    key object: the configuration travels to worker processes pickled."""
    data = _read(path, "public key")
    if b"PRIVATE KEY" in data:  # the private key must never be on the sensor: refuse it loudly
        raise EvidenceError(f"{path}: is a private key; configure the public key (PREFIX.pub) and keep this one away")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise EvidenceError(f"{path}: not a PEM public key") from None
    if not isinstance(key, X25519PublicKey):
        raise EvidenceError(f"{path}: not an X25519 key (make one with `pii-sensor keygen`)")
    try:  # a low-order point would make every shared secret zero: refused by the key agreement
        X25519PrivateKey.generate().exchange(key)
    except ValueError:
        raise EvidenceError(f"{path}: not a usable X25519 public key") from None
    return key.public_bytes_raw()


def load_private_key(path: str) -> X25519PrivateKey:
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise EvidenceError(f"{path}: the key is encrypted with a passphrase; give an unencrypted PKCS8 key") from None
    except ValueError:
        raise EvidenceError(f"{path}: not a PEM private key (PKCS8), as `pii-sensor keygen` writes to PREFIX.key") from None
    if not isinstance(key, X25519PrivateKey):
        raise EvidenceError(f"{path}: not an X25519 key (make one with `pii-sensor keygen`)")
    return key


def keygen(prefix: str) -> tuple[str, str]:
    """A new key pair: PREFIX.key (PKCS8 PEM, mode 0600) and PREFIX.pub (SubjectPublicKeyInfo PEM).
    Existing files are never overwritten: losing a private key loses the evidence sealed to it."""
    key = X25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    paths = (prefix + ".key", prefix + ".pub")
    for path in paths:
        if os.path.lexists(path):
            raise EvidenceError(f"{path}: exists; not overwritten")
    _write_new(paths[0], private, 0o600)
    _write_new(paths[1], public, 0o644)
    return paths


def _write_new(path: str, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)  # created with its mode: never readable to others
    except OSError as e:
        raise EvidenceError(f"{path}: cannot write: {e.strerror or type(e).__name__}") from None
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fd, mode)  # whatever the umask
        fh.write(data)


# --- sealing and opening ------------------------------------------------------------

def context(event_id: str, data_type: str, part: str, path: str) -> bytes:
    """The associated data: the finding's place as its event shows it (the path already masked),
    so a blob copied to another finding or another event does not open."""
    # netstring-like (each field's length before it): unambiguous, whatever a path holds
    return (f"{VERSION}:{len(event_id)}:{event_id},{len(data_type)}:{data_type},{len(part)}:{part},"
            f"{len(path)}:{path},").encode("utf-8", "surrogatepass")


def _aead(shared: bytes, ephemeral: bytes, recipient: bytes) -> ChaCha20Poly1305:
    # both public keys in the derivation, as HPKE does: the key belongs to this pair alone
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO + ephemeral + recipient)
    return ChaCha20Poly1305(hkdf.derive(shared))


def _pad(data: bytes) -> bytes:
    data += b"\x80"
    return data + bytes(-len(data) % PAD)


def _unpad(data: bytes) -> bytes:
    stripped = data.rstrip(b"\0")
    if not stripped.endswith(b"\x80"):
        raise EvidenceError("bad padding")
    return stripped[:-1]


class Sealer:
    """Seals values to one public key. Keeps no secret longer than KEY_SECONDS."""

    def __init__(self, public_key: bytes):
        self._recipient = public_key
        self._key = X25519PublicKey.from_public_bytes(public_key)
        self._lock = threading.Lock()  # a nonce must never be handed out twice under one key
        self._aead = self._head = None
        self._used, self._expires, self._pid = 0, 0.0, 0

    def __repr__(self) -> str:
        return "Sealer()"

    def _rotate(self) -> None:
        ephemeral = X25519PrivateKey.generate()
        public = ephemeral.public_key().public_bytes_raw()
        self._aead = _aead(ephemeral.exchange(self._key), public, self._recipient)
        self._head = bytes([VERSION]) + public
        self._used, self._expires, self._pid = 0, time.monotonic() + KEY_SECONDS, os.getpid()

    def seal(self, items: list[tuple[str, bytes]]) -> list[str]:
        """A blob for each (value, context). The nonce counts the key's uses: unique under it."""
        with self._lock:
            # a new key when this one is old or worn, or was inherited across a fork (the child
            # would hand out the parent's nonces again)
            if (self._used + len(items) > KEY_USES or time.monotonic() > self._expires
                    or self._pid != os.getpid()):
                self._rotate()
            aead, head, first = self._aead, self._head, self._used
            self._used += len(items)
        out = []
        for i, (value, ad) in enumerate(items, first):
            nonce = i.to_bytes(_NONCE, "big")
            sealed = aead.encrypt(nonce, _pad(value.encode("utf-8", "surrogatepass")), ad)
            out.append(base64.urlsafe_b64encode(head + nonce + sealed).rstrip(b"=").decode("ascii"))
        return out


class Opener:
    """Opens blobs with the private key; remembers the key agreement per ephemeral key, so that
    opening the many values sealed under one costs one agreement, as sealing them did."""

    def __init__(self, private_key: X25519PrivateKey):
        self._key = private_key
        self._recipient = private_key.public_key().public_bytes_raw()
        self._aeads: dict[bytes, ChaCha20Poly1305] = {}

    def __repr__(self) -> str:
        return "Opener()"

    def open(self, blob: str, ad: bytes) -> str:
        if not isinstance(blob, str):
            raise EvidenceError("evidence is not a string")
        try:
            raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
        except (binascii.Error, ValueError):
            raise EvidenceError("evidence is not base64url") from None
        if len(raw) < _HEAD + PAD + _TAG:
            raise EvidenceError("evidence is too short")
        if raw[0] != VERSION:
            raise EvidenceError(f"unknown evidence version {raw[0]}")
        ephemeral, nonce, sealed = raw[1:1 + _KEY], raw[1 + _KEY:_HEAD], raw[_HEAD:]
        try:
            plain = self._aead(ephemeral).decrypt(nonce, sealed, ad)
        except (InvalidTag, ValueError):
            raise EvidenceError("cannot open: another key's, altered, or moved from another finding") from None
        try:
            return _unpad(plain).decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise EvidenceError("evidence is not text") from None

    def _aead(self, ephemeral: bytes) -> ChaCha20Poly1305:
        aead = self._aeads.get(ephemeral)
        if aead is None:
            if len(self._aeads) >= 4096:
                self._aeads.clear()
            shared = self._key.exchange(X25519PublicKey.from_public_bytes(ephemeral))  # ValueError: a low-order point
            aead = self._aeads[ephemeral] = _aead(shared, ephemeral, self._recipient)
        return aead
