"""The ELF symbol reader (labkit.analysis.compiled) on shared objects built here with the
machine's gcc and stripped, as wheels ship them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from labkit.analysis import compiled

SOURCE = """
int labkit_probe_exported(int x) { return x * 3 + 1; }
static int hidden(int x) { return x - 7; }
int labkit_probe_other(int x) { return hidden(x) + labkit_probe_exported(x); }
"""


def _build(tmp_path: Path, name: str, source: str, *flags: str) -> Path:
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    so = tmp_path / f"{name}.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", *flags, "-o", str(so), str(src)],
                   check=True)
    subprocess.run(["strip", "--strip-all", str(so)], check=True)
    return so


def _nm_address(so: Path, symbol: str) -> int:
    """The symbol's address as binutils' nm reads it (not our reader)."""
    out = subprocess.run(["nm", "-D", "--defined-only", str(so)], capture_output=True,
                         text=True, check=True).stdout
    return next(int(ln.split()[0], 16) for ln in out.splitlines() if ln.endswith(" " + symbol))


def test_an_address_inside_a_stripped_object_resolves_to_its_exported_function(
        tmp_path: Path) -> None:
    # GIVEN a stripped shared object (no .symtab left, only .dynsym)
    so = _build(tmp_path, "probe", SOURCE)
    assert b".symtab" not in so.read_bytes()
    at = _nm_address(so, "labkit_probe_exported")
    # THEN an address a few bytes into the function is that function, at that offset
    assert compiled.symbol_at(so, at + 2) == ("labkit_probe_exported", 2)
    assert compiled.symbol_at(so, at) == ("labkit_probe_exported", 0)
    names = {s.name for s in compiled.symbols(so) if s.function}
    assert {"labkit_probe_exported", "labkit_probe_other"} <= names
    assert "hidden" not in names  # static: stripped with .symtab


def test_a_module_with_debug_symbols_names_its_static_functions_too(tmp_path: Path) -> None:
    src = tmp_path / "full.c"
    src.write_text(SOURCE)
    so = tmp_path / "full.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O0", "-o", str(so), str(src)], check=True)
    assert "hidden" in {s.name for s in compiled.symbols(so) if s.function}


def test_a_file_that_is_not_elf_is_refused_with_one_line(tmp_path: Path) -> None:
    text = tmp_path / "notes.so"
    text.write_text("not a shared object\n")
    with pytest.raises(compiled.NotELFError, match="is not an ELF file"):
        compiled.symbols(text)
    so = _build(tmp_path, "probe", SOURCE)
    cut = tmp_path / "cut.so"
    cut.write_bytes(so.read_bytes()[:40])
    with pytest.raises(compiled.NotELFError, match="truncated"):
        compiled.symbols(cut)
    assert compiled.is_opaque(text) is False  # a reader that cannot read it claims nothing


def test_a_function_is_placed_in_the_module_of_site_packages_that_defines_it(
        tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    (site / "pkg").mkdir(parents=True)
    so = _build(site / "pkg", "_probe.cpython-311-x86_64-linux-gnu", SOURCE)
    init = ('__attribute__((visibility("default"))) int PyInit__only_init(void) '
            "{ return 0; }\nstatic int work(int x) { return x; }\n")
    opaque = _build(site, "_only_init", init, "-fvisibility=hidden")
    assert compiled.defining("labkit_probe_other", (str(site),)) == str(so)
    assert compiled.defining("no_such_function", (str(site),)) is None
    assert compiled.compiled_modules(site) == tuple(sorted((str(so), str(opaque))))
    assert compiled.is_opaque(so) is False
    assert compiled.is_opaque(opaque) is True


def test_native_frames_memray_could_not_name_are_charged_to_a_module_and_package(
        tmp_path: Path) -> None:
    from labkit.analysis.libraries import native_library
    from labkit.attribution import DEFAULT
    from labkit.stacks import Frame

    # GIVEN a site-packages where a pure-Python package requires a "-core" distribution
    # that ships one stripped module, and another module that exports its functions
    site = tmp_path / "site-packages"
    (site / "wrapper").mkdir(parents=True)
    (site / "wrapper_core").mkdir()
    init = ('__attribute__((visibility("default"))) int PyInit__core(void) { return 0; }\n'
            "static int work(int x) { return x; }\n")
    core = _build(site / "wrapper_core", "_core.cpython-311-x86_64-linux-gnu", init,
                  "-fvisibility=hidden")
    exporter = _build(site, "probe.cpython-311-x86_64-linux-gnu", SOURCE)
    info = site / "wrapper-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: wrapper\nVersion: 1.0\n"
                                   "Requires-Dist: wrapper-core (==2.0)\n"
                                   "Requires-Dist: probe ; extra == 'fast'\n")
    dists = {"wrapper": ("wrapper", "1.0"), "wrapper_core": ("wrapper-core", "2.0"),
             "probe": ("probe", "3.0")}
    api = Frame(str(site / "wrapper" / "api.py"), 5, "build")
    user = Frame(str(tmp_path / "app.py"), 3, "handle")
    interp = Frame("Objects/typeobject.c", 1091, "type_call")
    unknown = Frame("<unknown>", 0, "<unknown>")
    # WHEN memray named neither the function nor its file, below the package's Python code
    lib = native_library([unknown, unknown, interp], [api, user], DEFAULT, dists,
                         (str(site),))
    # THEN it is the required distribution's stripped module, entered from the package
    assert lib is not None
    assert (lib.package, lib.version) == ("wrapper-core", "2.0")
    assert (lib.site.function, lib.site.file) == ("<unknown>", str(core))
    assert lib.entry.function == "build"
    assert lib.site.where == ("native code (wrapper_core/_core.cpython-311-x86_64-linux-gnu"
                              ".so)")
    # WHEN memray named the symbol (no file) just above an unnamed frame, called by the user
    named = Frame("<unknown>", 0, "labkit_probe_other")
    outer = Frame("<unknown>", 0, "labkit_probe_exported")
    lib = native_library([unknown, named, unknown, outer, interp], [user], DEFAULT, dists,
                         (str(site),))
    # THEN the module that exports that symbol is the site, by that name, and its entry
    # the outermost function of that module (never the user's own line)
    assert lib is not None
    assert (lib.package, lib.version) == ("probe", "3.0")
    assert (lib.site.function, lib.site.file) == ("labkit_probe_other", str(exporter))
    assert (lib.entry.function, lib.entry.file) == ("labkit_probe_exported", str(exporter))
    # AND with no site-packages known, nothing is made up
    assert native_library([unknown, interp], [user], DEFAULT, dists, ()) is None
