"""The layout's rules (ARCHITECTURE.md): imports point down the data flow, private names stay home,
and the light modules load no heavy framework."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "enhance"

#: Layer of each subpackage or top-level module, lowest first; a module may import from its own
#: layer and the layers below it, never above.
LAYERS = {
    "_version": 0, "exceptions": 0, "constants": 0, "checks": 0, "io": 0, "data": 0,
    "observation": 1,
    "scenes": 2,
    "models": 3,
    "runtime": 4,
    "training": 5,
    "inference": 6,
    "analysis": 7,
    "cli": 8, "demo": 8, "web": 8, "__init__": 8,
}  # fmt: skip


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        yield path, parts


def _imports(path, parts):
    """(line, target module parts, names) for every import of the package, also inside functions."""
    package = parts[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = (*base, *(node.module.split(".") if node.module else ()))
            elif node.module and node.module.split(".")[0] == "enhance":
                target = tuple(node.module.split(".")[1:])
            else:
                continue
            names = [alias.name for alias in node.names]
            if not node.module and node.level:  # from . import x
                yield node.lineno, target, names, [(*target, name) for name in names]
            else:
                yield node.lineno, target, names, [target]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "enhance":
                    target = tuple(alias.name.split(".")[1:])
                    yield node.lineno, target, [], [target]


def _layer(parts):
    return LAYERS[parts[0]] if parts else LAYERS["__init__"]


def test_every_module_has_a_layer():
    unknown = sorted({parts[0] for _, parts in _modules() if parts[0] not in LAYERS})
    assert not unknown, f"add these to LAYERS and ARCHITECTURE.md: {unknown}"


def _upward(path, parts):
    """The imports of one module that point to a higher layer than its own."""
    found = []
    for line, _target, _names, modules in _imports(path, parts):
        for module in modules:
            if module and module[0] in LAYERS and _layer(module) > _layer(parts):
                found.append(f"{'/'.join(parts)}.py:{line} imports enhance.{'.'.join(module)}")
    return found


def test_imports_point_down_the_data_flow():
    upward = [found for path, parts in _modules() for found in _upward(path, parts)]
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_no_private_name_crosses_a_module():
    crossing = []
    for path, parts in _modules():
        for line, target, names, _ in _imports(path, parts):
            private = [name for name in names if name.startswith("_") and name != "__version__"]
            if private and target != parts:
                crossing.append(f"{path.relative_to(PACKAGE)}:{line} imports {private} from {'.'.join(target)}")
    assert not crossing, "\n".join(crossing)


def test_the_layer_rule_catches_an_upward_import(tmp_path):
    # The rule above must be able to fail: a module of the observation layer importing inference.
    fake = tmp_path / "observation" / "bad.py"
    fake.parent.mkdir()
    fake.write_text("from ..inference.pipeline import enhance\n")
    assert _upward(fake, ("observation", "bad")) == ["observation/bad.py:1 imports enhance.inference.pipeline"]
    fake.write_text("from ..checks import check_image\nfrom .psf import psf_kernel\n")
    assert _upward(fake, ("observation", "bad")) == []


@pytest.mark.parametrize("module", ["enhance", "enhance.psf", "enhance.observation.psf", "enhance.observation.degrade",
                                    "enhance.io", "enhance.runtime.export"])  # fmt: skip
def test_light_imports_load_no_framework(module):
    code = (
        "import sys, warnings\n"
        "warnings.simplefilter('ignore', DeprecationWarning)\n"
        f"import {module}\n"
        "print(sorted(m for m in ('torch', 'dask', 'distributed', 'matplotlib') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stdout


def test_old_flat_paths_forward_with_a_warning():
    import enhance.observation.psf as new

    sys.modules.pop("enhance.psf", None)  # so that this import runs the finder and warns
    with pytest.warns(DeprecationWarning, match=r"enhance\.psf is deprecated.*enhance\.observation\.psf"):
        old = importlib.import_module("enhance.psf")
    sys.modules.pop("enhance.psf")
    assert old.psf_kernel is new.psf_kernel
