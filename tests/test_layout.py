"""``tests/`` mirrors the package: one folder per subpackage, and a direct test file for every module."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "enhance"


def _modules():
    """Every module of the package, relative to it, but ``__init__`` and private ones (``_version``)."""
    return sorted(p.relative_to(PACKAGE) for p in PACKAGE.rglob("*.py") if not p.name.startswith("_"))


def _direct_test(module: Path) -> Path:
    return ROOT / "tests" / module.parent / f"test_{module.stem}.py"


def test_every_module_has_a_direct_test_file():
    missing = [str(m) for m in _modules() if not _direct_test(m).is_file()]
    assert missing == []


def test_every_test_folder_is_a_subpackage():
    subpackages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    folders = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
    assert folders <= subpackages


def test_the_mirror_rule_sees_a_missing_file():
    assert _direct_test(Path("observation/psf.py")) == ROOT / "tests" / "observation" / "test_psf.py"
    assert _direct_test(Path("cli.py")) == ROOT / "tests" / "test_cli.py"
    assert Path("observation/psf.py") in _modules()
