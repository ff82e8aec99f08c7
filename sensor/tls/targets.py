"""What to give SslTracer.attach(): the files that hold OpenSSL's SSL_write.

- the system's libssl.so.3 (`ldconfig -p`, else the usual directories), so that
  processes started later are traced too;
- every running process's own copy: each file mapped in /proc/PID/maps whose
  name starts with `libssl.so` (a venv's or a container's OpenSSL), and the
  process's executable when its ELF dynamic symbol table defines SSL_write
  (OpenSSL linked in statically, as in node).

The executables are checked only when pyelftools is installed. A statically
linked OpenSSL whose symbols are not exported (a stripped or -static build, Go's
or Rust's own TLS) is not found: there is no symbol to put a uprobe on by name.

A path in /proc/PID/maps is as the process sees it: for a process in another
mount namespace (a container) the file is reached through /proc/PID/root/<path>,
which lasts only as long as that process does. Uprobes belong to the file
(inode), so each file is returned once, under a path of our own namespace when
there is one. A library replaced on disk since it was mapped ("(deleted)") is
skipped.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess

__all__ = ["discover", "system_libssl", "process_libraries", "exports_ssl_write"]

LIBSSL = "libssl.so.3"
_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib64", "/lib",
         "/usr/local/lib64", "/usr/local/lib")
_LDCONFIG_ARCH = {"x86_64": "x86-64", "aarch64": "AArch64"}  # how `ldconfig -p` tags 64-bit libraries
_exports_cache: dict[tuple[int, int, int], bool] = {}


def system_libssl() -> str | None:
    """The real path of the libssl.so.3 the dynamic linker would load."""
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    try:
        out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    tag = _LDCONFIG_ARCH.get(platform.machine(), "")
    found = []
    for line in out.splitlines():  # "\tlibssl.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so.3"
        left, _, path = line.strip().partition(" => ")
        if left.split(" ", 1)[0] == LIBSSL and os.path.exists(path):
            found.append((tag not in left, path))  # this machine's architecture first
    if found:
        return os.path.realpath(min(found)[1])
    for d in _DIRS:
        if os.path.exists(path := os.path.join(d, LIBSSL)):
            return os.path.realpath(path)
    return None


def exports_ssl_write(path: str) -> bool:
    """Whether the ELF file defines SSL_write in its dynamic symbols (False without pyelftools)."""
    try:
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile
    except ImportError:
        return False
    try:
        st = os.stat(path)
        key = (st.st_dev, st.st_ino, st.st_mtime_ns)
        if key not in _exports_cache:
            with open(path, "rb") as f:
                dynsym = ELFFile(f).get_section_by_name(".dynsym")
                syms = (dynsym.get_symbol_by_name("SSL_write") or []) if dynsym else []
                _exports_cache[key] = any(s["st_shndx"] != "SHN_UNDEF" for s in syms)  # UNDEF: imported
        return _exports_cache[key]
    except (OSError, ELFError):
        return False


def _mnt_ns(pid: str, proc: str) -> int | None:
    try:
        return os.stat(f"{proc}/{pid}/ns/mnt").st_ino
    except OSError:
        return None


def process_libraries(proc: str = "/proc") -> list[str]:
    """Each running process's libssl and SSL-exporting executable, as paths we can open."""
    ours = _mnt_ns("self", proc)
    paths = []
    for pid in filter(str.isdigit, os.listdir(proc)):
        try:
            with open(f"{proc}/{pid}/maps") as f:
                maps = f.read()
            exe = os.readlink(f"{proc}/{pid}/exe")
        except OSError:  # gone, or a kernel thread
            continue
        prefix = "" if _mnt_ns(pid, proc) == ours else f"{proc}/{pid}/root"
        seen = set()
        for line in maps.splitlines():
            fields = line.split(maxsplit=5)  # address perms offset dev inode path
            if len(fields) < 6 or not fields[5].startswith("/") or fields[5] in seen:
                continue
            path = fields[5]
            seen.add(path)
            if path.endswith(" (deleted)"):
                continue
            if os.path.basename(path).startswith("libssl.so") or (path == exe and exports_ssl_write(prefix + path)):
                paths.append(prefix + path)
    return list(dict.fromkeys(paths))


def discover(proc: str = "/proc") -> list[str]:
    """Unique files to attach to: one path per file, our own namespace's paths preferred."""
    by_file: dict[tuple[int, int], str] = {}
    system = system_libssl()
    for path in ([system] if system else []) + process_libraries(proc):
        try:
            st = os.stat(path)
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key not in by_file or (by_file[key].startswith(f"{proc}/") and not path.startswith(f"{proc}/")):
            by_file[key] = path
    return list(by_file.values())
