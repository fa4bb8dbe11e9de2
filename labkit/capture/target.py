"""The program's own interpreter: what it is, and what labkit lends it.

:func:`probe` asks the target interpreter about itself once, before a capture: its
version, ``sys.prefix``, ``sys.path``, and the distributions installed where it looks
(``{top-level import name: [distribution, version]}``), read by the target, not by labkit.
A command that is not a Python, a Python older than 3.11, or one that cannot start is a
one-line :class:`InputError`.

:func:`lend` makes a folder holding only what the in-process agent needs from labkit's own
environment (memray and the packages ``import memray`` loads; labkit itself for a
scenario), as symlinks. The agent appends that folder to the *end* of ``sys.path``, so the
program imports exactly what it always did; a module the target has of its own (its own
memray, say) is the one used. Nothing is ever installed into the target.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.errors import InputError

MIN_VERSION = (3, 11)
_MARK = "LABKIT-PROBE "
_TIMEOUT_S = 60

# Runs in the target: valid in any Python that can print, so an old one still says its
# version; the rest only from 3.11 on.
_PROBE = r"""
import sys, json
out = {"version": list(sys.version_info[:3]), "executable": sys.executable}
if sys.version_info >= (3, 11):
    import os, sysconfig, importlib.util
    from importlib import metadata
    out.update(implementation=sys.implementation.name, prefix=sys.prefix,
               base_prefix=sys.base_prefix, sys_path=list(sys.path),
               soabi=sysconfig.get_config_var("SOABI") or "",
               site_packages=[p for p in sys.path
                              if os.path.basename(p) in ("site-packages", "dist-packages")])
    import inspect
    dists = {}
    for dist in metadata.distributions():  # in sys.path order: the first one imports
        try:
            entry = [dist.metadata["Name"], dist.version]
            tops = (dist.read_text("top_level.txt") or "").split()
            if not tops:
                for f in dist.files or ():
                    top = f.parts[0] if len(f.parts) > 1 else inspect.getmodulename(f.name)
                    if top and top != ".." and not top.endswith((".dist-info", ".egg-info")):
                        tops.append(top)
            tops = tops or [entry[0].lower().replace("-", "_")]  # no RECORD: its name
        except Exception:
            continue
        for top in tops:
            if top.isidentifier() and top != "__pycache__":
                dists.setdefault(top, entry)
    out["distributions"] = dists
    spec = importlib.util.find_spec("memray")
    if spec is not None and spec.origin:
        out["memray"] = {"version": dists.get("memray", ["", "?"])[1],
                         "path": os.path.dirname(spec.origin)}
sys.stdout.write("\n" + MARK + json.dumps(out) + "\n")
""".replace("MARK", repr(_MARK))


@dataclass
class Target:
    """What the target interpreter said about itself (see the module docstring)."""

    python: str
    version: tuple[int, ...]
    executable: str
    implementation: str = ""
    soabi: str = ""
    prefix: str = ""
    base_prefix: str = ""
    sys_path: list[str] = field(default_factory=list)
    site_packages: list[str] = field(default_factory=list)
    distributions: dict[str, list[str]] = field(default_factory=dict)
    memray: dict[str, str] | None = None  # the target's own memray (found, not imported)

    @property
    def version_text(self) -> str:
        """``3.11.7``."""
        return ".".join(map(str, self.version))

    @property
    def minor(self) -> str:
        """``3.11``."""
        return ".".join(map(str, self.version[:2]))

    def matches_labkit(self) -> bool:
        """Whether labkit's compiled modules (memray) load in this interpreter."""
        return (self.implementation == sys.implementation.name
                and self.soabi == (sysconfig.get_config_var("SOABI") or ""))

    def manifest(self) -> dict[str, Any]:
        """The manifest's record of the target environment."""
        return {"version": self.version_text, "implementation": self.implementation,
                "executable": self.executable, "prefix": self.prefix,
                "base_prefix": self.base_prefix, "site_packages": self.site_packages,
                "distributions": self.distributions}


def _first_line(text: str) -> str:
    """The line of an interpreter's stderr that says why it failed."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    fatal = [ln for ln in lines if ln.startswith("Fatal Python error")]
    line = fatal[0] if fatal else lines[-1] if lines else ""
    return line if len(line) <= 160 else line[:157] + "..."


def probe(python: str, options: Sequence[str] = (), env: dict[str, str] | None = None) -> Target:
    """Ask ``python`` (run with the program's interpreter ``options`` and environment)
    about itself; raise a one-line :class:`InputError` unless it is a Python >= 3.11 that
    starts."""
    try:
        cp = subprocess.run([python, *options, "-c", _PROBE], capture_output=True, text=True,
                            errors="replace", env=env, stdin=subprocess.DEVNULL,
                            timeout=_TIMEOUT_S)
    except OSError as exc:
        raise InputError(f"cannot start {python}: {exc.strerror}; give a Python "
                         "interpreter") from None
    except subprocess.TimeoutExpired:
        raise InputError(f"{python} did not answer within {_TIMEOUT_S} s; give a working "
                         "Python interpreter") from None
    answer = next((ln[len(_MARK):] for ln in cp.stdout.splitlines() if ln.startswith(_MARK)),
                  None)
    if answer is None:
        if cp.returncode != 0 and "python" in (cp.stderr + cp.stdout).lower():
            raise InputError(
                f"{python} cannot start ({_first_line(cp.stderr) or f'exit {cp.returncode}'});"
                " if it is a venv's, its base Python may have moved: recreate the venv")
        raise InputError(f"{python} is not a Python interpreter (it did not answer as one); "
                         "give a Python 3.11+")
    try:
        facts = json.loads(answer)
        version = tuple(int(v) for v in facts["version"])
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{python} is not a Python interpreter (it did not answer as one); "
                         "give a Python 3.11+") from None
    if version < MIN_VERSION:
        raise InputError(
            f"{python} is Python {'.'.join(map(str, version))}; labkit needs Python "
            f"{'.'.join(map(str, MIN_VERSION))} or newer: use a newer interpreter")
    return Target(python, version, str(facts.get("executable") or python), **_typed(facts))


def _typed(facts: dict[str, Any]) -> dict[str, Any]:
    """The probe's answers that have the shape :class:`Target` expects (a program's
    ``sitecustomize`` could print anything)."""
    def texts(v: Any) -> bool:
        return isinstance(v, list) and all(isinstance(x, str) for x in v)

    out: dict[str, Any] = {k: facts[k] for k in ("implementation", "soabi", "prefix",
                                                  "base_prefix") if isinstance(facts.get(k), str)}
    out.update({k: facts[k] for k in ("sys_path", "site_packages") if texts(facts.get(k))})
    dists = facts.get("distributions")
    if isinstance(dists, dict):
        out["distributions"] = {k: v for k, v in dists.items() if texts(v) and len(v) == 2}
    memray = facts.get("memray")
    if isinstance(memray, dict) and all(isinstance(v, str) for v in memray.values()):
        out["memray"] = memray
    return out


def memray_source(target: Target) -> str:
    """``"target"`` if the target has its own memray (preferred), ``"labkit"`` if labkit can
    lend its own; else a one-line :class:`InputError` naming both versions and the ways
    out."""
    if target.memray is not None:
        return "target"
    if target.matches_labkit():
        return "labkit"
    ours = ".".join(map(str, sys.version_info[:2]))
    raise InputError(
        f"{target.python} is {target.implementation} {target.minor} ({target.soabi}) and labkit "
        f"runs on {sys.implementation.name} {ours} ({sysconfig.get_config_var('SOABI')}), so "
        f"labkit cannot lend it memray: install memray in that environment, run labkit from "
        f"a Python {target.minor}, or capture without memray (--gc --pyspy --proc)")


@functools.cache
def memray_needs() -> tuple[str, ...]:
    """Paths in labkit's environment that the agent's use of memray loads (memray, its
    bundled shared libraries, the third-party packages it imports), found by importing it
    and tracking nothing in a fresh labkit interpreter."""
    code = r"""
import json, os, site, sys, sysconfig
dirs = {os.path.realpath(p) for p in [*site.getsitepackages(), site.getusersitepackages(),
                                      *(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))]}
import tempfile
before = set(sys.modules)
import memray, memray._memray
with tempfile.TemporaryDirectory() as tmp:
    with memray.Tracker(os.path.join(tmp, "probe.bin"), native_traces=True,
                        trace_python_allocators=True, follow_fork=False):
        pass
paths = set()
for name in set(sys.modules) - before:
    f = getattr(sys.modules[name], "__file__", None)
    top = sys.modules.get(name.split(".")[0])
    tf = getattr(top, "__file__", None)
    if not f or not tf or not any(os.path.realpath(tf).startswith(d + os.sep) for d in dirs):
        continue
    paths.add(os.path.dirname(tf) if os.path.basename(tf).startswith("__init__.") else tf)
print(json.dumps(sorted(paths)))
"""
    cp = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        timeout=_TIMEOUT_S)
    if cp.returncode != 0:
        raise InputError(f"labkit's own memray does not import ({_first_line(cp.stderr)}); "
                         "reinstall labkit's environment (make lab)")
    found = []
    for p in json.loads(cp.stdout):
        found.append(p)
        libs = f"{p}.libs"  # auditwheel's bundled shared libraries, found via $ORIGIN/..
        if os.path.isdir(libs):
            found.append(libs)
    return tuple(found)


def labkit_package() -> str:
    """The directory of labkit's own package (lent to run its scenario programs)."""
    return str(Path(__file__).resolve().parent.parent)


@dataclass
class Lent:
    """A folder of symlinks into labkit's environment, appended to the target's sys.path."""

    path: Path
    names: list[str]

    def manifest(self) -> dict[str, Any]:
        """The manifest's record of what labkit lent."""
        return {"path": str(self.path), "names": self.names}

    def remove(self) -> None:
        """Remove the folder (the links only)."""
        shutil.rmtree(self.path, ignore_errors=True)


def lend_paths(paths: Sequence[str]) -> Lent:
    """A fresh folder linking each of ``paths`` (packages or modules) under its own name."""
    folder = Path(tempfile.mkdtemp(prefix="labkit-lent-"))
    names = []
    for p in paths:
        name = os.path.basename(p)
        os.symlink(p, folder / name)
        names.append(name)
    return Lent(folder, sorted(names))


@dataclass
class Loan:
    """The probed target, and what labkit lends it for one run (``close()`` when done)."""

    target: Target
    lent: Lent | None = None
    memray: dict[str, str] | None = None  # where the program's memray comes from

    def facts(self, program: Sequence[str]) -> dict[str, Any]:
        """The manifest's ``target``: the environment, ``sys_path`` as ``program`` (``PROG
        ARGS``, ``-m MOD``, ``-c CODE``) sees it under the agent (entry 0 set as the agent
        sets it; the lent folder last), memray's source and what was lent."""
        t = self.target
        tail = t.sys_path[1:] if t.sys_path else []
        first = (os.getcwd() if program[0] == "-m" else "" if program[0] == "-c"
                 else os.path.dirname(os.path.abspath(program[0])))
        out = {**t.manifest(),
               "sys_path": [first, *tail, *([str(self.lent.path)] if self.lent else [])]}
        if self.memray is not None:
            out["memray"] = self.memray
        if self.lent is not None:
            own = {Path(n).stem for n in self.lent.names} & set(t.distributions)
            # the target's own copy of a lent name comes first on sys.path and is used
            out["lent"] = {**self.lent.manifest(), "target_has": sorted(own)}
        return out

    def close(self) -> None:
        """Remove the lent folder."""
        if self.lent is not None:
            self.lent.remove()


def prepare(python: str, options: Sequence[str], env: dict[str, str], *, memray: bool,
            lend: Sequence[str] = ()) -> Loan:
    """Probe ``python``; if ``memray`` is wanted, take the target's own or lend labkit's
    (see :func:`memray_source`); lend ``lend`` (paths in labkit's environment) too."""
    loan = Loan(probe(python, options, env))
    needs = list(lend)
    if memray:
        if memray_source(loan.target) == "labkit":
            from importlib import metadata

            needs += memray_needs()
            loan.memray = {"source": "labkit", "version": metadata.version("memray")}
        else:
            loan.memray = {"source": "target", **(loan.target.memray or {})}
    loan.lent = lend_paths(needs) if needs else None
    return loan
