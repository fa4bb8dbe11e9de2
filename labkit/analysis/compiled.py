"""Which compiled module a native frame is in, read from the modules' ELF symbol tables.

memray names a native frame by its symbol when the shared object exports one, but gives
``<unknown>`` as its file (a stripped wheel has no debug info) and, for a static function
of a stripped object, ``<unknown>`` as its symbol too; its public API gives neither the
instruction address nor the image. So a frame is placed by its symbol: the compiled
modules of the target's ``site-packages`` that define it (:func:`defining`).

The reader is pure Python (``struct``), read-only and bounded: it reads the ELF header,
the section headers and the ``.symtab``/``.dynsym`` sections with their string tables, each
at most :data:`MAX_SECTION_BYTES`; a file that is not a 32- or 64-bit ELF is refused with
one line (:class:`NotELFError`).
"""

from __future__ import annotations

import bisect
import functools
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from labkit.errors import InputError

MAX_SECTION_BYTES = 64 * 1024 * 1024  # a symbol or string table larger than this is skipped
MAX_MODULES = 4000  # compiled modules looked at per site-packages folder
_SHT_SYMTAB, _SHT_DYNSYM = 2, 11
_STT_FUNC, _STT_OBJECT = 2, 1
_SHN_UNDEF = 0


class NotELFError(InputError):
    """A file given to the ELF reader is not an ELF shared object it can read."""


@dataclass(frozen=True, order=True)
class Symbol:
    """A symbol defined by a shared object: its address relative to the object's load base
    (its ``st_value``), its size (0 when unknown) and name."""

    address: int
    size: int
    name: str
    function: bool


def _read(f: BinaryIO, offset: int, size: int) -> bytes:
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise NotELFError(f"{f.name} is a truncated ELF file; give a whole shared object")
    return data


def _symbols_of(path: Path) -> tuple[Symbol, ...]:
    with open(path, "rb") as f:
        ident = f.read(16)
        if len(ident) < 16 or ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) \
                or ident[5] not in (1, 2):
            raise NotELFError(f"{path} is not an ELF file; give a shared object (.so)")
        wide, end = ident[4] == 2, "<" if ident[5] == 1 else ">"
        hdr = _read(f, 0, 64 if wide else 52)
        if wide:
            shoff, = struct.unpack_from(end + "Q", hdr, 0x28)
            shentsize, shnum = struct.unpack_from(end + "HH", hdr, 0x3A)
        else:
            shoff, = struct.unpack_from(end + "I", hdr, 0x20)
            shentsize, shnum = struct.unpack_from(end + "HH", hdr, 0x2E)
        if not shoff or shnum == 0 or shentsize * shnum > MAX_SECTION_BYTES:
            return ()
        # (type, offset, size, link, entsize) of each section
        fmt = end + ("IIQQQQIIQQ" if wide else "IIIIIIIIII")
        raw = _read(f, shoff, shentsize * shnum)
        secs = []
        for i in range(shnum):
            s = struct.unpack_from(fmt, raw, i * shentsize)
            secs.append((s[1], s[4], s[5], s[6], s[9]))
        out: set[Symbol] = set()
        for kind, off, size, link, entsize in secs:
            if kind not in (_SHT_SYMTAB, _SHT_DYNSYM) or not entsize or link >= len(secs) \
                    or size > MAX_SECTION_BYTES or secs[link][2] > MAX_SECTION_BYTES:
                continue
            table, names = _read(f, off, size), _read(f, secs[link][1], secs[link][2])
            for j in range(size // entsize):
                if wide:
                    name_at, info, _o, shndx, value, sym_size = struct.unpack_from(
                        end + "IBBHQQ", table, j * entsize)
                else:
                    name_at, value, sym_size, info, _o, shndx = struct.unpack_from(
                        end + "IIIBBH", table, j * entsize)
                kind_of = info & 0xF
                if shndx == _SHN_UNDEF or kind_of not in (_STT_FUNC, _STT_OBJECT) \
                        or not name_at:
                    continue
                stop = names.find(b"\0", name_at)
                name = names[name_at:stop if stop >= 0 else None].decode(errors="replace")
                out.add(Symbol(value, sym_size, name, kind_of == _STT_FUNC))
    return tuple(sorted(out))


@functools.lru_cache(maxsize=512)
def _cached(path: str, _size: int, _mtime_ns: int) -> tuple[Symbol, ...]:
    try:
        return _symbols_of(Path(path))
    except struct.error:
        raise NotELFError(f"{path} is a damaged ELF file") from None


def symbols(path: str | Path) -> tuple[Symbol, ...]:
    """The functions and objects ``path`` defines (``.symtab`` and ``.dynsym``), by address.
    Raises :class:`NotELFError` for a file that is not ELF, or an ``OSError``."""
    st = os.stat(path)
    return _cached(str(path), st.st_size, st.st_mtime_ns)


def symbol_at(path: str | Path, address: int) -> tuple[str, int] | None:
    """(name, offset) of the function of ``path`` nearest below ``address`` (relative to
    the object's load base): the one that contains it, else the closest that starts
    before it; None if no function starts at or before it."""
    funcs = [s for s in symbols(path) if s.function]
    i = bisect.bisect_right([s.address for s in funcs], address) - 1
    if i < 0:
        return None
    inside = [s for s in funcs[:i + 1] if s.address <= address < s.address + s.size]
    best = inside[-1] if inside else funcs[i]
    return best.name, address - best.address


def is_opaque(path: str | Path) -> bool:
    """Whether a compiled module names none of its own functions but its ``PyInit_``
    entry (a stripped module: memray shows its frames as ``<unknown>``)."""
    try:
        names = [s.name for s in symbols(path) if s.function]
    except (OSError, NotELFError):
        return False
    return bool(names) and all(n.startswith("PyInit_") for n in names)


def compiled_modules(site_packages: str | Path) -> tuple[str, ...]:
    """The compiled modules (``*.so``) under a ``site-packages`` folder, at most
    :data:`MAX_MODULES`, sorted; empty for a folder that cannot be read. Each folder is
    walked once per process."""
    return _walk(str(site_packages))


@functools.lru_cache(maxsize=16)
def _walk(site_packages: str) -> tuple[str, ...]:
    found: list[str] = []
    for root, dirs, files in os.walk(site_packages):
        dirs[:] = sorted(d for d in dirs if not d.endswith((".dist-info", "__pycache__")))
        found += (os.path.join(root, n) for n in files if n.endswith(".so") or ".so." in n)
        if len(found) >= MAX_MODULES:
            break
    return tuple(sorted(found[:MAX_MODULES]))


@functools.lru_cache(maxsize=16)
def _index(folder: str) -> dict[str, str]:
    """Function name -> the first compiled module under ``folder`` that defines it."""
    out: dict[str, str] = {}
    for so in compiled_modules(folder):
        try:
            for s in symbols(so):
                if s.function:
                    out.setdefault(s.name, so)
        except (OSError, NotELFError):
            continue
    return out


def defining(function: str, site_packages: tuple[str, ...]) -> str | None:
    """The compiled module under ``site_packages`` that defines the function ``function``
    (the first, in folder order), or None. Each folder is read once per process."""
    for folder in site_packages:
        found = _index(str(folder)).get(function)
        if found is not None:
            return found
    return None
