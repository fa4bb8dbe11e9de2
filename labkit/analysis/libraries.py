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
native frame, in its shared object. memray names no file for a frame of a stripped wheel,
so the object is found from the target's ``site-packages`` (:mod:`labkit.analysis.compiled`):
the module that defines the frame's symbol, else the one stripped module of the package
that called into it (or of the packages that one requires).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from labkit.analysis import compiled
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
        frame whose file memray could not name is ``function (native code)``; one in a
        compiled module ``function (pkg/_mod.so)``, or ``native code (pkg/_mod.so)`` when
        no symbol names it."""
        if self.file in ("<unknown>", "") or self.file.startswith("<unknown"):
            return f"{self.function} (native code)"
        if shared_object_of(self.file):
            name = in_package_path(self.file)
            return f"native code ({name})" if self.function in ("<unknown>", "") else \
                f"{self.function} ({name})"
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
_UNKNOWN = ("<unknown>", "")


def site_packages_of(frames: Sequence[Frame], recorded: Sequence[str] = ()) -> tuple[str, ...]:
    """The target's ``site-packages`` folders: those ``recorded`` at capture (the run's
    manifest), else those the Python ``frames`` are in."""
    if recorded:
        return tuple(recorded)
    found: dict[str, None] = {}
    for f in frames:
        path = f[0].replace("\\", "/")
        for marker in ("/site-packages/", "/dist-packages/"):
            if marker in path:
                found[path[:path.index(marker) + len(marker) - 1]] = None
    return tuple(found)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(package: str, folders: Sequence[str],
                  distributions: Mapping[str, tuple[str, str]]) -> list[str]:
    """The top-level import names of what ``package``'s distribution requires (its
    ``Requires-Dist``, extras left out), from its ``*.dist-info`` in ``folders``."""
    dist = _norm(distributions.get(package, (package, ""))[0])
    tops = {_norm(d): top for top, (d, _v) in distributions.items()}
    for folder in folders:
        for info in sorted(Path(folder).glob("*.dist-info")):
            if _norm(info.name[:-10].rsplit("-", 1)[0]) != dist:
                continue
            try:
                meta = (info / "METADATA").read_text(errors="replace")
            except OSError:
                return []
            needs = [re.split(r"[\s;<>=!~\[(]", ln.split(":", 1)[1].strip(), maxsplit=1)[0]
                     for ln in meta.splitlines()
                     if ln.startswith("Requires-Dist:") and "extra ==" not in ln]
            return [tops.get(_norm(n), _norm(n).replace("-", "_")) for n in needs if n]
    return []


def _opaque_module(caller: Frame | None, folders: Sequence[str],
                   distributions: Mapping[str, tuple[str, str]]) -> str | None:
    """The compiled module that native frames memray could not name (``<unknown>``) called
    from ``caller`` are in: the one stripped module (:func:`compiled.is_opaque`) of the
    caller's package, else of the packages it requires; None when there is not exactly
    one."""
    package = package_of(caller[0]) if caller is not None else None
    if package is None or not folders:
        return None
    modules = [so for folder in folders for so in compiled.compiled_modules(folder)]
    for packages in ({package}, set(_requirements(package, folders, distributions))):
        found = [so for so in modules if package_of(so) in packages and compiled.is_opaque(so)]
        if len(found) == 1:
            return found[0]
        if found:
            return None
    return None


def _native_site(native: Sequence[Frame], caller: Frame | None, folders: Sequence[str],
                 distributions: Mapping[str, tuple[str, str]]) -> tuple[str, str] | None:
    """(function, file) of the innermost native frame that is neither the interpreter nor
    the allocator. A frame memray gave no file: the compiled module of ``folders`` that
    defines its symbol (or the symbol of a frame just above it, before the interpreter),
    else the stripped module its Python caller reaches (:func:`_opaque_module`); the
    function is ``<unknown>`` when no symbol names it."""
    i = next((i for i, f in enumerate(native) if not _INTERPRETER.search(f[0])
              and f[2] not in _ALLOCATORS), None)
    if i is None:
        return None
    site = native[i]
    if site[0] not in _UNKNOWN or not folders:
        return site[2], site[0]
    for f in native[i:]:
        if _INTERPRETER.search(f[0]) or f[0] not in _UNKNOWN:
            break
        so = compiled.defining(f[2], tuple(folders)) if f[2] not in _UNKNOWN else None
        if so is not None:
            return f[2], so
    so = _opaque_module(caller, folders, distributions)
    return (site[2], so) if so is not None else (site[2], site[0])


def _outermost(native: Sequence[Frame], site: FrameRef, folders: Sequence[str]) -> FrameRef:
    """The outermost frame of ``site``'s shared object that memray named, from the site up
    to the interpreter (the function the Python call entered: ``objToJSONFile`` under
    ``ujson.dump``); ``site`` when there is none."""
    start = next((i for i, f in enumerate(native) if f[2] == site.function
                  and not _INTERPRETER.search(f[0])), None)
    if start is None or not shared_object_of(site.file):
        return site
    found = site
    for f in native[start:]:
        if f[0] not in _UNKNOWN and f[0] != site.file:
            break  # the interpreter, or another object's source
        if f[2] not in _UNKNOWN and (f[0] == site.file or compiled.defining(
                f[2], tuple(folders)) == site.file):
            found = FrameRef(f[2], site.file, int(f[1]))
    return found


def native_library(native: Sequence[Frame], python: Sequence[Frame], how: Attribution,
                   distributions: Mapping[str, tuple[str, str]],
                   site_packages: Sequence[str] = ()) -> Library | None:
    """The library whose native code made an allocation: its site is the innermost native
    frame that is neither the interpreter nor the C allocator itself (:func:`_native_site`),
    in its shared object when memray names it or the target's ``site_packages`` (default:
    the folders of the ``python`` frames) place it (``site-packages/<pkg>/...so`` gives the
    package), else in the package of the innermost Python frame that called into it. None
    when neither names an installed package."""
    caller = python[0] if python else None
    found = _native_site(native, caller, site_packages_of(python, site_packages),
                         distributions)
    if found is None:
        return None
    function, file = found
    so = shared_object_of(file)
    package = package_of(so) if so else None
    if package is None and caller is not None:
        package = package_of(caller[0])
    if package is None or package == "labkit":
        return None
    _user, lib = split_stack(tuple(python), how, distributions)
    line = next((int(f[1]) for f in native if (f[2], f[0]) == found), 0)
    site = FrameRef(function, so or file, line)
    # the entry is package code: the package's own API, else the package that called into
    # it, else (called straight from the user's code) the native site itself
    entry = lib.entry if lib is not None and package_of(lib.site.file) == package else \
        _ref(caller) if caller is not None and package_of(caller[0]) else \
        _outermost(native, site, site_packages_of(python, site_packages))
    dist, version = distribution(package, so or (caller[0] if caller else ""), distributions)
    return Library(dist, version, entry, site)
