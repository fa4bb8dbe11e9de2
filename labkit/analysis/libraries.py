"""Which installed package a piece of evidence passes through, and where in it.

A stack (innermost first) from the user's code into an installed package names three
places: *your code* (the first user frame, :mod:`labkit.attribution`), the package's
*entry* (the first frame of the package under your code: the API you called) and its
*site* (the innermost frame of that package: where it allocated, started the thread or
opened the fd). The package is the one the innermost package frame belongs to, so a
library that calls another (``requests`` into ``urllib3``) is charged to the one whose
code made the resource. labkit's own frames never make a library.

A suspect is keyed by its package site when it has one (every caller of that site is one
suspect; the heaviest caller is named as "your code"), else by the user's line.

The distribution and version come from the target environment: ``distributions``
(top-level import name -> (distribution, version), recorded at capture time), else the
``*.dist-info`` beside the package in the very ``site-packages`` its file is in.

In a capture with native stacks (``labkit capture --native``), an allocation made by a
package's compiled code is charged to that code (:func:`native_library`): the site is the
native frame, with its shared object when memray names it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from labkit.attribution import Attribution
from labkit.stacks import Frame, in_package_path, package_of, shared_object_of


@dataclass(frozen=True)
class FrameRef:
    """A frame as the faces name it."""

    function: str
    file: str
    line: int

    @property
    def where(self) -> str:
        """``function (aiohttp/cookiejar.py:356)``: the path inside site-packages; a native
        frame whose file memray could not name is ``function (native code)``."""
        if self.file in ("<unknown>", "") or self.file.startswith("<unknown"):
            return f"{self.function} (native code)"
        return f"{self.function} ({in_package_path(self.file)}:{self.line})"


@dataclass(frozen=True)
class Library:
    """The installed package a suspect's evidence passes through."""

    package: str  # the distribution's name (``aiohttp``), else the import name
    version: str | None  # from the target environment; None when unknown
    entry: FrameRef
    site: FrameRef

    @property
    def label(self) -> str:
        """``aiohttp 3.12.2`` or ``aiohttp (version unknown)``."""
        return f"{self.package} {self.version}" if self.version else \
            f"{self.package} (version unknown)"


def _ref(f: Frame) -> FrameRef:
    return FrameRef(f[2], f[0], int(f[1]))


@functools.lru_cache(maxsize=1024)
def _dist_info(site_packages: str, package: str) -> tuple[str, str] | None:
    """(distribution, version) of ``package`` from the ``*.dist-info`` folders of
    ``site_packages`` on this machine (``top_level.txt``, else ``RECORD``), or None."""
    root = Path(site_packages)
    try:
        infos = sorted(root.glob("*.dist-info"))
    except OSError:
        return None
    for info in infos:
        names: set[str] = set()
        try:
            top = info / "top_level.txt"
            if top.is_file():
                names = set(top.read_text(errors="replace").split())
            elif (info / "RECORD").is_file():
                names = {ln.split("/", 1)[0].split(",", 1)[0].removesuffix(".py")
                         for ln in (info / "RECORD").read_text(errors="replace").splitlines()}
            meta = (info / "METADATA").read_text(errors="replace") if package in names else ""
        except OSError:
            continue
        if package in names:
            fields = dict(ln.split(": ", 1) for ln in meta.splitlines()[:20] if ": " in ln)
            name = fields.get("Name") or info.name.split("-", 1)[0]
            return name, fields.get("Version") or info.name[:-10].rsplit("-", 1)[-1]
    return None


def distribution(package: str, file: str,
                 distributions: Mapping[str, tuple[str, str]]) -> tuple[str, str | None]:
    """(distribution name, version or None) of the top-level import ``package``."""
    if package in distributions:
        dist, version = distributions[package]
        return dist, version or None
    path = file.replace("\\", "/")
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in path:
            found = _dist_info(path[:path.index(marker) + len(marker)], package)
            if found is not None:
                return found
    return package, None


def split_stack(stack: Sequence[Frame], how: Attribution,
                distributions: Mapping[str, tuple[str, str]]) -> tuple[Frame | None,
                                                                        Library | None]:
    """(the user's frame, the library under it) of ``stack``, innermost first; either may be
    None. The library is looked for only below the first user frame (or in the whole stack
    when there is none); a package frame that ``how`` ignores is not one."""
    user = how.user_frame(stack) if stack else None
    first = next((i for i, f in enumerate(stack) if how.is_user(f)), len(stack))
    inner = stack[:first]
    site_i = next((i for i, f in enumerate(inner) if _is_package(f, how)), None)
    if site_i is None:
        return user, None
    package = package_of(inner[site_i][0])
    entry_i = max(i for i, f in enumerate(inner) if package_of(f[0]) == package)
    dist, version = distribution(str(package), inner[site_i][0], distributions)
    return user, Library(dist, version, _ref(inner[entry_i]), _ref(inner[site_i]))


def _is_package(f: Frame, how: Attribution) -> bool:
    pkg = package_of(f[0])
    if pkg is None or pkg in ("labkit", "memray", "_pytest", "pytest", "pluggy"):
        return False
    return how.ignore is None or not how.ignore.search(f"{f[0]}:{f[2]}")


_INTERPRETER = re.compile(r"^(?:\./)?(?:Objects|Python|Include|Modules|Parser)/|libpython|"
                          r"/memray/|^<frozen")
_ALLOCATORS = frozenset({"malloc", "calloc", "realloc", "free", "posix_memalign", "memalign",
                         "aligned_alloc", "valloc", "pvalloc", "mmap", "mmap64"})


def native_library(native: Sequence[Frame], python: Sequence[Frame], how: Attribution,
                   distributions: Mapping[str, tuple[str, str]]) -> Library | None:
    """The library whose native code made an allocation: its site is the innermost native
    frame that is neither the interpreter nor the C allocator itself; its shared object is
    the frame's file when memray names one (``site-packages/<pkg>/...so`` gives the
    package), else the package of the innermost Python frame that called into it. None when
    neither names an installed package."""
    site = next((f for f in native if not _INTERPRETER.search(f[0])
                 and f[2] not in _ALLOCATORS), None)
    if site is None:
        return None
    so = shared_object_of(site[0])
    package = package_of(so) if so else None
    caller = python[0] if python else None
    if package is None and caller is not None:
        package = package_of(caller[0])
    if package is None or package == "labkit":
        return None
    _user, lib = split_stack(tuple(python), how, distributions)
    entry = lib.entry if lib is not None and package_of(lib.site.file) == package else \
        (_ref(caller) if caller else _ref(site))
    dist, version = distribution(package, so or (caller[0] if caller else ""), distributions)
    return Library(dist, version, entry, FrameRef(site[2], so or site[0], int(site[1])))
