"""Plaintext of TLS connections, read from OpenSSL by eBPF uprobes: tracer.SslTracer, targets.discover()."""
