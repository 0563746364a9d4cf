"""The locked development environment (requirements/dev.lock) agrees with pyproject.toml.

`make install` installs the lock; `make lock` rewrites it from pyproject.toml. These tests fail when a
requirement is added to or tightened in pyproject.toml without refreshing the lock.
"""

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "dev.lock"
# The extras that `make install` (dev) and `make docs` (docs) need.
LOCKED_EXTRAS = ("dev", "docs")
# The lock is made for CPython 3.11 on x86-64 Linux (the Makefile's `uv pip compile` flags).
LOCK_ENVIRONMENT = {
    **default_environment(),
    "python_version": "3.11",
    "python_full_version": "3.11.7",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


def read_lock(text: str) -> dict[str, Version]:
    """Pinned versions of a pip-style lock file (``name==version`` lines), by canonical name."""
    pins = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s\\;]+)", line)
        if match:
            pins[canonicalize_name(match.group(1))] = Version(match.group(3))
    return pins


def project_requirements(pyproject: dict, extras: tuple[str, ...]) -> list[Requirement]:
    """The requirements of the project and of the named extras, following self-references."""
    project = pyproject["project"]
    name = canonicalize_name(project["name"])
    optional = project.get("optional-dependencies", {})
    wanted, seen, out = list(extras), set(), [Requirement(r) for r in project["dependencies"]]
    while wanted:
        extra = wanted.pop()
        if extra in seen:
            continue
        seen.add(extra)
        if extra not in optional:
            msg = f"pyproject.toml has no extra {extra!r}"
            raise KeyError(msg)
        for text in optional[extra]:
            req = Requirement(text)
            if canonicalize_name(req.name) == name:
                wanted.extend(req.extras)
            else:
                out.append(req)
    return out


def disagreements(pyproject: dict, pins: dict[str, Version]) -> list[str]:
    """Each requirement that the lock does not pin, or pins outside its range."""
    problems = []
    for req in project_requirements(pyproject, LOCKED_EXTRAS):
        if req.marker is not None and not req.marker.evaluate(LOCK_ENVIRONMENT):
            continue
        pinned = pins.get(canonicalize_name(req.name))
        if pinned is None:
            problems.append(f"{req.name} is not in the lock")
        elif not req.specifier.contains(pinned, prereleases=True):
            problems.append(f"{req.name}=={pinned} does not satisfy {req}")
    return problems


@pytest.fixture(scope="module")
def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_lock_satisfies_every_requirement_of_pyproject(pyproject):
    assert disagreements(pyproject, read_lock(LOCK.read_text())) == []


def test_a_tightened_requirement_is_caught(pyproject):
    pins = read_lock(LOCK.read_text())
    edited = {**pyproject, "project": {**pyproject["project"]}}
    edited["project"]["dependencies"] = [*pyproject["project"]["dependencies"], f"numpy>{pins['numpy']}"]
    assert disagreements(edited, pins) == [f"numpy=={pins['numpy']} does not satisfy numpy>{pins['numpy']}"]


def test_a_new_requirement_is_caught(pyproject):
    edited = {**pyproject, "project": {**pyproject["project"]}}
    edited["project"]["dependencies"] = [*pyproject["project"]["dependencies"], "not-a-locked-package>=1"]
    assert disagreements(edited, read_lock(LOCK.read_text())) == ["not-a-locked-package is not in the lock"]


def test_lock_pins_the_cpu_build_of_torch_and_a_consistent_dask():
    pins = read_lock(LOCK.read_text())
    assert pins["torch"].local == "cpu"
    # dask[distributed] needs the distributed release of the same version.
    assert pins["dask"] == pins["distributed"]
    # Every pin carries a hash, so `pip install --require-hashes` accepts the file.
    blocks = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text())
    assert all("--hash=sha256:" in block for block in blocks if "==" in block.split("\n", 1)[0])


def test_read_lock_parses_pins_and_ignores_comments():
    text = "# via x\nfoo-bar==1.2.3 \\\n    --hash=sha256:ab\n    # via y\ntorch==2.13.0+cpu\n"
    assert read_lock(text) == {"foo-bar": Version("1.2.3"), "torch": Version("2.13.0+cpu")}
