"""Past one machine: the zero-to-jupyterhub values file, validated as helm validates it
(the chart's defaults merged with ours, against the chart's published values schema,
vendored), and the lab image's Dockerfile, checked against the repository."""

from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "z2jh" / "chart-4.4.0"
VALUES = DEPLOY / "z2jh" / "values.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"


def helm_merge(defaults: Any, user: Any) -> Any:
    """Helm's coalescing of values: maps merge key by key, a user's null deletes the key,
    anything else (lists, scalars) replaces the default."""
    if not (isinstance(defaults, dict) and isinstance(user, dict)):
        return copy.deepcopy(user)
    out = copy.deepcopy(defaults)
    for k, v in user.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = helm_merge(out.get(k), v) if isinstance(out.get(k), dict) else \
                copy.deepcopy(v)
    return out


def _errors(values: dict) -> list[str]:
    import jsonschema

    schema = json.loads((CHART / "values.schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    merged = helm_merge(yaml.safe_load((CHART / "values.yaml").read_text()), values)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in cls(schema).iter_errors(merged)]


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


def test_the_values_file_is_valid_for_the_chart(values: dict) -> None:
    assert _errors(values) == []


def test_the_vendored_schema_is_the_charts_and_catches_a_mistake(values: dict) -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["additionalProperties"] is False
    note = (CHART / "SOURCE.md").read_text()
    assert "4.4.0" in note and "github.com/jupyterhub/zero-to-jupyterhub-k8s" in note
    assert "--version 4.4.0" in VALUES.read_text()
    typo = copy.deepcopy(values)
    typo["singleuser"]["memroy"] = typo["singleuser"].pop("memory")
    assert any("memroy" in e for e in _errors(typo))
    wrong = copy.deepcopy(values)
    wrong["cull"]["timeout"] = "an hour"
    assert any(e.startswith("cull.timeout") for e in _errors(wrong))


def _bytes(quantity: str | int) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]i?)?", str(quantity))
    assert m, quantity
    unit = m.group(2) or ""
    power = "KMGT".index(unit[0]) + 1 if unit else 0
    return float(m.group(1)) * ((1024 if unit.endswith("i") else 1000) ** power)


def test_each_learner_gets_the_lab_image_capped_and_culled(values: dict) -> None:
    su = values["singleuser"]
    assert su["image"]["name"].endswith("labkit-lab")
    assert f"labkit-lab:{su['image']['tag']}" in DOCKERFILE.read_text()
    mem, cpu = su["memory"], su["cpu"]
    # a scenario is capped at 1 GiB by labkit itself: the pod's limit leaves room above it
    from labkit.scenarios import NAMES, get_spec

    largest = max(get_spec(n).memory_cap_mb for n in NAMES) * 2**20
    assert _bytes(mem["limit"]) > largest and _bytes(mem["guarantee"]) <= _bytes(mem["limit"])
    assert 0 < cpu["guarantee"] <= cpu["limit"]
    cull = values["cull"]
    assert cull["enabled"] is True and cull["timeout"] > 0 and cull["every"] < cull["timeout"]


def test_the_room_logs_in_with_a_shared_password_never_committed(values: dict) -> None:
    cfg = values["hub"]["config"]
    assert cfg["JupyterHub"]["authenticator_class"] == "shared-password"
    assert cfg["Authenticator"]["allow_all"] is True
    assert "SharedPasswordAuthenticator" not in cfg  # given at install with --set-string
    assert "SharedPasswordAuthenticator.user_password=" in VALUES.read_text()


def test_learners_record_where_the_trainer_reads(values: dict) -> None:
    env = values["singleuser"]["extraEnv"]
    mount = values["singleuser"]["storage"]["extraVolumeMounts"][0]["mountPath"]
    assert env["LABKIT_ROOM"] == mount and env["LABKIT_RECORDS"].startswith(mount + "/")
    claim = values["singleuser"]["storage"]["extraVolumes"][0]["persistentVolumeClaim"]
    pvc = yaml.safe_load((DEPLOY / "z2jh" / "class-records-pvc.yaml").read_text())
    assert pvc["metadata"]["name"] == claim["claimName"]
    assert "ReadWriteMany" in pvc["spec"]["accessModes"]
    hook = values["singleuser"]["lifecycleHooks"]["postStart"]["exec"]["command"]
    assert "/opt/labkit-notebooks" in hook[-1] and "test -e" in hook[-1]  # never over edits


def test_labkit_expands_the_learner_in_the_records_folder(monkeypatch, values: dict) -> None:
    from labkit.analysis.records import records_dir

    monkeypatch.setenv("JUPYTERHUB_USER", "ada")
    monkeypatch.setenv("LABKIT_RECORDS", values["singleuser"]["extraEnv"]["LABKIT_RECORDS"])
    assert records_dir() == Path(values["singleuser"]["extraEnv"]["LABKIT_ROOM"]) / "ada"


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln else "")
            for ln in (raw.strip() for raw in text.splitlines())
            if ln and not ln.startswith("#")]


def test_the_dockerfile_builds_from_what_the_repository_has() -> None:
    ins = _instructions()
    assert ins[0][0] == "FROM"
    assert re.fullmatch(r"(quay\.io/jupyter/[a-z-]+-notebook|python):[\w.-]*3\.11[\w.-]*",
                        ins[0][1]), ins[0][1]
    ignore = [ln for ln in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
              if ln and not ln.startswith("#")]
    kept = {ln[1:].rstrip("/") for ln in ignore if ln.startswith("!")}
    copies = [shlex.split(arg) for op, arg in ins if op == "COPY"]
    assert copies
    for args in copies:
        sources = [a for a in args[:-1] if not a.startswith("--")]
        for src in sources:
            assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
            assert src.split("/")[0] in kept, f"COPY {src}: excluded by the .dockerignore"
    runs = " ".join(arg for op, arg in ins if op == "RUN")
    assert "pip install --no-cache-dir /tmp/labkit-src" in runs
    copied = {a for args in copies for a in args[:-1]}
    assert {"pyproject.toml", "labkit", "notebooks", "datasets"} <= copied
    assert ("USER", "${NB_UID}") in ins  # the server runs as the learner, not root


@pytest.mark.slow
def test_the_image_context_builds_the_whole_package(tmp_path: Path) -> None:
    """What the Dockerfile copies to /tmp/labkit-src is enough to build labkit's wheel, with
    the notebooks, the datasets and the room's schema and page inside (docker itself may be
    missing where the tests run; the context is what this checkout controls)."""
    import shutil
    import subprocess
    import sys
    import zipfile

    src = tmp_path / "labkit-src"
    src.mkdir()
    for args in (shlex.split(arg) for op, arg in _instructions() if op == "COPY"):
        if not args[-1].startswith("/tmp/labkit-src"):
            continue
        for name in args[:-1]:
            dest = src / Path(args[-1]).relative_to("/tmp/labkit-src") / \
                (Path(name).name if args[-1].endswith("/") else "")
            copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
            copy(ROOT / name, dest, **({"ignore": shutil.ignore_patterns(
                "__pycache__", "*.ipynb")} if copy is shutil.copytree else {}))
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist),
                    str(src)], check=True, timeout=600, cwd=tmp_path)
    names = set(zipfile.ZipFile(next(dist.glob("labkit-*.whl"))).namelist())
    for need in ("labkit/schemas/record.schema.json",
                 "labkit/report/templates/pages/room.html.j2",
                 "labkit/lab_notebooks/10-pool-misuse.py", "labkit/lab_notebooks/class-room.py",
                 "labkit/lab_datasets/pool-misuse/leaky/manifest.json",
                 "labkit/lab_settings/overrides.json"):
        assert need in names, need
