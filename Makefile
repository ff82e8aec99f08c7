# The README's two commands are `make demo` and `make test`; each installs what it needs first.
PYTHON ?= python3
PIP = $(PYTHON) -m pip install --quiet --disable-pip-version-check --root-user-action=ignore

.PHONY: install install-test demo test bench corpus bpf

install:
	$(PIP) -e .

install-test:
	$(PIP) -e '.[test]'

demo: install
	pii-sensor scan corpus/labeled.har
	pii-sensor scan corpus/tricky.har --format json | head -n 3
	pii-sensor eval corpus/labeled.har
	pii-sensor map corpus/labeled.har

test: install-test
	$(PYTHON) -m pytest -q

bench: install
	$(PIP) -e '.[bench]'
	$(PYTHON) bench/engine.py
	$(PYTHON) bench/detection.py
	$(PYTHON) bench/capture.py
	$(PYTHON) bench/proxy.py
	$(PYTHON) bench/enforcement.py
	$(PYTHON) bench/live.py
	$(PYTHON) bench/hub.py
	$(PYTHON) bench/grpc_calls.py
	$(PYTHON) bench/evidence.py
	$(PYTHON) bench/tls.py

# Rebuild the shipped eBPF object (sensor/tls/ssl_trace.bpf.o) from its source: needs clang, bpftool
# and libbpf-dev, and a kernel with BTF (vmlinux.h is made from /sys/kernel/btf/vmlinux).
bpf:
	$(MAKE) -C sensor/tls

corpus: install-test
	$(PYTHON) corpus/generate.py
