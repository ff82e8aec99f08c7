"""The eBPF TLS-plaintext tracer against real OpenSSL: curl and a Python HTTPS server on loopback.

Needs root and a kernel that lets us load BPF programs and uprobes; skipped otherwise.
"""
from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import time

import pytest

from sensor.tls import targets
from sensor.tls.libbpf import BpfUnavailable

LIBSSL = targets.system_libssl()

SERVER = textwrap.dedent("""
    import http.server, ssl, sys

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            out = b'{"ok": true, "got": %d}' % len(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()
""")


@pytest.fixture(scope="module")
def bpf():
    """Skips the module unless the BPF object loads here: the probe is the real thing."""
    if os.geteuid() != 0:
        pytest.skip("the TLS tracer needs root (CAP_BPF and CAP_PERFMON) to load eBPF uprobes")
    if LIBSSL is None:
        pytest.skip("no libssl.so.3 on this machine")
    from sensor.tls.tracer import SslTracer
    try:
        SslTracer().close()
    except BpfUnavailable as e:
        pytest.skip(f"BPF not permitted here: {e}")
    return SslTracer


@pytest.fixture
def tracer(bpf):
    with bpf() as t:
        t.attach(LIBSSL)
        yield t


def _self_signed(tmp_path) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture
def server(tmp_path):
    """(pid, port) of a Python HTTPS server: its _ssl uses the system libssl.so.3 too."""
    proc = subprocess.Popen([sys.executable, "-c", SERVER, *_self_signed(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())  # printed once it listens
        yield proc.pid, port
    finally:
        proc.kill()
        proc.wait()


def collect(tracer, done, timeout=30.0) -> list:
    """Chunks polled until done(chunks) holds; fails at the deadline."""
    chunks, end = [], time.monotonic() + timeout
    while time.monotonic() < end:
        chunks += tracer.poll(100)
        if done(chunks):
            return chunks
    pytest.fail(f"condition not met in {timeout}s; got {chunks}")


def first(chunks, **want):
    return next((c for c in chunks if all(getattr(c, k) == v for k, v in want.items())), None)


def post(port: int, body: bytes) -> bytes:
    """One POST from this very process, through Python's ssl (SSL_write_ex / SSL_read_ex)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw) as s:
        s.sendall(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
        return answer


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_request_and_response_both_sides_with_addresses(tracer, server):
    server_pid, port = server
    body = json.dumps({"email": "jane@example.com"})
    curl = subprocess.Popen(["curl", "-sk", f"https://127.0.0.1:{port}/path", "-d", body],
                            stdout=subprocess.PIPE)
    assert curl.communicate(timeout=30)[0] == b'{"ok": true, "got": %d}' % len(body)

    def seen(chunks):
        mine = [c for c in chunks if c.pid in (curl.pid, server_pid)]
        return (first(mine, pid=curl.pid, direction="write") and first(mine, pid=curl.pid, direction="read")
                and first(mine, pid=server_pid, direction="read") and first(mine, pid=server_pid, direction="write"))

    chunks = collect(tracer, seen)
    sent = [c for c in chunks if c.pid == curl.pid and c.direction == "write"]
    assert sent[0].data.startswith(b"POST /path HTTP/1.1\r\n")
    assert body.encode() in b"".join(c.data for c in sent)
    got = first(chunks, pid=curl.pid, direction="read")
    assert got.data.startswith(b"HTTP/1.0 200")
    assert {c.comm for c in chunks if c.pid == curl.pid} == {"curl"}
    assert sent[0].remote == ("127.0.0.1", port) and sent[0].local[0] == "127.0.0.1"
    assert got.remote == sent[0].remote and got.local == sent[0].local and got.ssl == sent[0].ssl

    # the server's side of the same connection, the other way round
    received = first(chunks, pid=server_pid, direction="read")
    answered = first(chunks, pid=server_pid, direction="write")
    assert received.data.startswith(b"POST /path HTTP/1.1\r\n")
    assert answered.data.startswith(b"HTTP/1.0 200")
    assert received.local == ("127.0.0.1", port) and received.remote == sent[0].local
    assert answered.local == received.local and answered.remote == received.remote
    assert all(c.length == len(c.data) and not c.truncated for c in chunks if c.pid in (curl.pid, server_pid))


@pytest.mark.parametrize("size", [40_000, 100_000])
def test_large_write_is_split_then_cut(tracer, server, size):
    from sensor.tls.tracer import MAX_CHUNK, MAX_PIECES
    _, port = server
    body = os.urandom(size // 2).hex().encode()
    request = b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    assert post(port, body).startswith(b"HTTP/1.0 200")

    chunks = collect(tracer, lambda cs: first(cs, pid=os.getpid(), direction="write"))
    write = first(chunks, pid=os.getpid(), direction="write")
    assert write.length == len(request)  # one SSL_write_ex moved it all
    assert write.data == request[:MAX_CHUNK * MAX_PIECES]  # pieces reassembled in order, up to the cap
    assert write.truncated == (len(request) > MAX_CHUNK * MAX_PIECES)
    assert write.remote == ("127.0.0.1", port)


def test_full_ring_is_counted_as_lost(bpf, server):
    _, port = server
    with bpf(ring_bytes=4096) as tracer:  # one page: a 10 KB chunk cannot fit
        tracer.attach(LIBSSL)
        before = tracer.lost()
        post(port, b"x" * 10_000)
        assert tracer.lost() > before  # counted by the return probe, before sendall returned
        tracer.poll(0)


def _our_program_ids(names) -> set[int]:
    out = subprocess.run(["bpftool", "prog", "list", "-j"], capture_output=True, text=True, check=True).stdout
    return {p["id"] for p in json.loads(out) if p.get("name") in names}


@pytest.mark.skipif(shutil.which("bpftool") is None, reason="needs bpftool")
def test_attach_detach_close_leave_no_programs(bpf):
    from sensor.tls.tracer import PROGRAMS
    before, created = _our_program_ids(PROGRAMS), set()
    for _ in range(5):
        tracer = bpf()
        tracer.attach(LIBSSL)
        assert tracer.attach(LIBSSL) == []  # already there
        new = _our_program_ids(PROGRAMS) - before - created
        assert len(new) >= 8  # 4 entry + 4 return programs, and this load's own
        created |= new
        tracer.detach(LIBSSL)
        tracer.close()
        tracer.close()  # idempotent
        with pytest.raises(ValueError):
            tracer.poll(0)
    end = time.monotonic() + 30  # the kernel frees a program after an RCU grace period, not at once
    while _our_program_ids(PROGRAMS) & created and time.monotonic() < end:
        time.sleep(0.1)
    assert not _our_program_ids(PROGRAMS) & created


def test_attach_errors_are_one_line(bpf, tmp_path):
    with bpf() as tracer:
        with pytest.raises(FileNotFoundError):
            tracer.attach(tmp_path / "missing.so")
        with pytest.raises(BpfUnavailable, match="defines none of") as e:
            tracer.attach(sys.executable)
        assert "\n" not in str(e.value)
        assert tracer.attached == []


def test_chunk_repr_hides_the_plaintext():
    from sensor.tls.tracer import Chunk
    c = Chunk(pid=1, tid=2, comm="curl", ssl=0x1234, direction="write", timestamp_ns=5, length=100,
              data=b"secret jane@example.com", local=("127.0.0.1", 5000), remote=("127.0.0.1", 443))
    assert "jane" not in repr(c) and "secret" not in str(c)
    assert "length=100" in repr(c) and "captured=23" in repr(c)


def test_discover_finds_the_system_libssl_once(server):
    if LIBSSL is None:
        pytest.skip("no libssl.so.3 on this machine")
    found = targets.discover()
    assert LIBSSL in found  # the server maps it too: one path for one file
    files = [(os.stat(p).st_dev, os.stat(p).st_ino) for p in found]
    assert len(files) == len(set(files))


def test_exports_ssl_write_tells_definition_from_import():
    pytest.importorskip("elftools")
    curl = shutil.which("curl")
    assert targets.exports_ssl_write(LIBSSL)
    if curl:
        assert not targets.exports_ssl_write(curl)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare")
def test_a_copy_in_another_mount_namespace_is_reached_through_proc_root(bpf, tmp_path):
    """A 'container': a process whose libssl lives on a tmpfs only its own mount namespace has."""
    if os.geteuid() != 0:
        pytest.skip("needs root for unshare -m")
    hidden = tmp_path / "ns"  # a tmpfs over it inside their namespace; an empty directory in ours
    hidden.mkdir()
    script = (f"import ctypes, sys; ctypes.CDLL('{hidden}/libssl.so.3'); print('up', flush=True); "
              "sys.stdin.read()")
    proc = subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         f"mount -t tmpfs none {hidden} && cp {LIBSSL} {hidden}/ && exec {sys.executable} -c \"{script}\""],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "up\n"
        assert not (hidden / "libssl.so.3").exists()  # not in our namespace
        found = targets.discover()
        theirs = f"/proc/{proc.pid}/root{hidden}/libssl.so.3"
        assert theirs in found
        with bpf() as tracer:
            assert "SSL_write" in tracer.attach(theirs)
    finally:
        proc.kill()
        proc.wait()
