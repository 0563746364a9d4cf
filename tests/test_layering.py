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
    "_version": 0, "exceptions": 0, "constants": 0, "checks": 0, "cores": 0, "grid": 0, "io": 0, "data": 0,
    "observation": 1,
    "scenes": 2,
    "models": 3,
    "runtime": 4,
    "training": 5,
    "inference": 6,
    "analysis": 7,
    "cli": 8, "demo": 8, "web": 8, "__init__": 8,
    "__main__": 9,
}  # fmt: skip


def _modules(root=PACKAGE):
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        yield path, parts


def _module_name(parts):
    """The module a file is: a package's ``__init__`` is the package."""
    return parts[:-1] if parts and parts[-1] == "__init__" else parts


def _import_nodes(tree):
    """``(node, inside a function)`` for every import statement of a module (class bodies run at import;
    ``if TYPE_CHECKING:`` blocks never run)."""
    found = []

    def visit(node, inside):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                found.append((child, inside))
            visit(child, inside or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

    visit(tree, False)
    return found


def _imports(path, parts, *, inside=None, submodules=frozenset()):
    """(line, target module parts, names, modules) for every import of the package, also inside functions.

    ``modules`` are the modules the statement loads: ``from .io import read_fits`` loads ``io``, and
    ``from . import io`` or ``from .models import network`` (names in ``submodules``) the submodule named.
    With ``inside`` True or False, only the imports inside functions or only those at module level.
    """
    package = parts[:-1]
    for node, in_function in _import_nodes(ast.parse(path.read_text())):
        if inside is not None and in_function != inside:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = (*base, *(node.module.split(".") if node.module else ()))
            elif node.module and node.module.split(".")[0] == "enhance":
                target = tuple(node.module.split(".")[1:])
            else:
                continue
            names = [alias.name for alias in node.names]
            named = [(*target, name) for name in names if (*target, name) in submodules]
            if not node.module and node.level:  # from . import x
                yield node.lineno, target, names, [(*target, name) for name in names]
            else:  # the package itself too where a name is not a submodule
                yield node.lineno, target, names, [target] * (len(named) < len(names)) + named
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "enhance":
                    target = tuple(alias.name.split(".")[1:])
                    yield node.lineno, target, [], [target]


def _external_imports(path, *, inside):
    """(line, dotted name) for every import of another package, inside functions or at module level."""
    for node, in_function in _import_nodes(ast.parse(path.read_text())):
        if in_function != inside:
            continue
        if isinstance(node, ast.ImportFrom) and not node.level and node.module.split(".")[0] != "enhance":
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names if a.name.split(".")[0] != "enhance")


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


#: The optional heavy dependencies, the only packages imported inside functions: each is an extra that may be
#: missing, or costs a noticeable part of a second to import (sunpy.map: 2.4 s, it loads matplotlib).
#: astropy.wcs: 0.2 s (it loads astropy.coordinates), for the limb check of a cut-out that may reach the limb only.
#: sunpy.util.exceptions: 0.2 s (sunpy loads astropy.wcs), for the warning classes, defined when first used.
HEAVY = ("torch", "dask", "distributed", "matplotlib", "onnxruntime", "onnx", "h5py", "pandas", "playwright",
         "sunpy.map", "safetensors.torch", "astropy.wcs", "sunpy.util.exceptions")  # fmt: skip
#: The command line imports the library inside its subcommands, so that ``enhance --help`` loads almost nothing.
ENTRY_POINTS = {("cli",), ("__main__",)}


def _is_heavy(name):
    return any(name == heavy or name.startswith(f"{heavy}.") for heavy in HEAVY)


def _graph(root=PACKAGE, *, inside=None):
    """``{module: {(line, imported module)}}``: the package's imports of itself (``inside``: see `_imports`)."""
    files = {_module_name(parts): (path, parts) for path, parts in _modules(root)}
    graph = {}
    for name, (path, parts) in files.items():
        edges = graph.setdefault(name, set())
        for line, _target, _names, modules in _imports(path, parts, inside=inside, submodules=files.keys()):
            edges.update((line, module) for module in modules if module in files and module != name)
    return graph


def _heavy_modules(root=PACKAGE):
    """The modules of the package that load a heavy dependency when imported (at module level, or through
    another module of the package that does)."""
    files = {_module_name(parts): path for path, parts in _modules(root)}
    heavy = {
        name for name, path in files.items() if any(_is_heavy(dep) for _, dep in _external_imports(path, inside=False))
    }
    top = _graph(root, inside=False)
    while True:
        more = {name for name, edges in top.items() if name not in heavy and any(m in heavy for _, m in edges)}
        if not more:
            return heavy
        heavy |= more


def _cycles(root=PACKAGE):
    """Each group of modules that import one another (in a cycle), imports inside functions counted, with the
    imports that close it: ``["a.py:12 imports b", ...]`` per cycle."""
    graph = _graph(root)
    reach = {}
    for start in graph:  # the modules each module reaches (the package has a few dozen: a plain search)
        seen, stack = set(), [start]
        while stack:
            for _, module in graph.get(stack.pop(), ()):
                if module not in seen:
                    seen.add(module)
                    stack.append(module)
        reach[start] = seen
    groups = {frozenset(m for m in graph if m in reach[a] and a in reach[m]) for a in graph if a in reach[a]}
    return sorted(
        sorted(f"{'/'.join(a)}.py:{line} imports {'.'.join(b)}" for a in group for line, b in graph[a] if b in group)
        for group in groups
    )


def _function_level_imports(root=PACKAGE):
    """The imports inside functions that should be at module level: of a light dependency (numpy, astropy,
    scipy, the standard library ...), or of a module of the package that loads no heavy dependency."""
    heavy = _heavy_modules(root)
    names = {_module_name(parts) for _, parts in _modules(root)}
    found = []
    for path, parts in _modules(root):
        where = f"{'/'.join(parts)}.py"
        found += [f"{where}:{line} imports {name}" for line, name in _external_imports(path, inside=True)
                  if not _is_heavy(name)]  # fmt: skip
        if _module_name(parts) in ENTRY_POINTS:
            continue
        for line, _target, _names, modules in _imports(path, parts, inside=True, submodules=names):
            found += [f"{where}:{line} imports enhance.{'.'.join(m)}" for m in modules if m and m not in heavy]
    return found


def test_no_import_cycles():
    cycles = _cycles()
    assert not cycles, "modules that import one another (imports inside functions counted):\n" + "\n".join(
        "  " + "; ".join(cycle) for cycle in cycles
    )


def test_imports_inside_functions_are_for_heavy_dependencies_only():
    found = _function_level_imports()
    assert not found, "move these imports to the top of their module:\n" + "\n".join(found)


def _fake_package(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_cycle_rule_catches_a_cycle_hidden_in_a_function(tmp_path):
    root = _fake_package(tmp_path, {
        "io.py": "import numpy as np\n",
        "observation/__init__.py": "",
        "observation/psf.py": "from ..io import np\n\n\ndef kernel():\n    from .degrade import bin2\n",
        "observation/degrade.py": "from .psf import kernel\n",
    })  # fmt: skip
    assert _cycles(root) == [["observation/degrade.py:1 imports observation.psf",
                              "observation/psf.py:5 imports observation.degrade"]]  # fmt: skip
    (root / "observation" / "psf.py").write_text("from ..io import np\n")
    assert _cycles(root) == []


def test_the_function_level_rule_catches_light_imports(tmp_path):
    root = _fake_package(tmp_path, {
        "io.py": "import numpy as np\n",
        "models/__init__.py": "",
        "models/network.py": "import torch\n",
        "models/pretrained.py": "from .network import torch\n",
        "runtime/__init__.py": "",
        "runtime/export.py": (
            "def a():\n    import numpy\n"
            "def b():\n    from astropy.io import fits\n"
            "def c():\n    from ..io import np\n"
            "def d():\n    import torch\n    import onnx\n    import sunpy.map\n"
            "def e():\n    from ..models.pretrained import torch\n"
            "def f():\n    from ..models import network\n"
        ),
    })  # fmt: skip
    assert _heavy_modules(root) == {("models", "network"), ("models", "pretrained")}
    light = ["runtime/export.py:2 imports numpy", "runtime/export.py:4 imports astropy.io",
             "runtime/export.py:6 imports enhance.io"]  # fmt: skip
    assert _function_level_imports(root) == light
    (root / "cli.py").write_text("def main():\n    from .io import np\n    import json\n")  # the entry point
    assert _function_level_imports(root) == ["cli.py:3 imports json", *light]


@pytest.mark.parametrize("module", ["enhance", "enhance.psf", "enhance.observation.psf", "enhance.observation.degrade",
                                    "enhance.io", "enhance.runtime.export", "enhance.inference.pipeline",
                                    "enhance.cli"])  # fmt: skip
def test_light_imports_load_no_framework(module):
    code = (
        "import sys, warnings\n"
        "warnings.simplefilter('ignore', DeprecationWarning)\n"
        f"import {module}\n"
        "print(sorted(m for m in ('torch', 'dask', 'distributed', 'matplotlib') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stdout


FRAMEWORKS = ("torch", "dask", "distributed", "matplotlib", "pandas", "onnx", "onnxruntime", "h5py", "sunpy.map")


def test_every_module_is_an_attribute_of_its_package():
    missing = []
    for _path, parts in _modules():
        if parts[-1] in ("__init__", "_version", "__main__"):  # __main__: the script, not an attribute
            continue
        package = importlib.import_module(".".join(("enhance", *parts[:-1])))
        if parts[-1] not in dir(package):
            missing.append(".".join(parts))
    assert not missing, f"add these to their package's lazy submodules (its __init__.py): {missing}"


def test_light_modules_load_as_attributes_without_a_heavy_dependency():
    """``import enhance`` and attribute access (``enhance.io.read_fits``) to every module that imports no heavy
    dependency at module level (`_heavy_modules`) load none: the two rules agree."""
    heavy = _heavy_modules()
    light = sorted(
        ".".join(m)
        for m in {_module_name(p) for _, p in _modules()} - heavy
        if m and m[0] not in ("_version", "__main__")
    )
    code = (
        "import sys, enhance\n"
        f"for name in {light!r}:\n"
        "    obj = enhance\n"
        "    for part in name.split('.'):\n"
        "        obj = getattr(obj, part)\n"
        f"print(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stdout
    assert {"io", "observation.psf", "inference.pipeline", "runtime.export", "cli"} <= set(light)


def test_heavy_modules_load_as_attributes():
    code = "import sys, enhance\nprint(enhance.models.network.EnhanceNet.__name__, 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.split() == ["EnhanceNet", "True"]


def test_old_flat_paths_forward_with_a_warning():
    import enhance.observation.psf as new

    sys.modules.pop("enhance.psf", None)  # so that this import runs the finder and warns
    with pytest.warns(DeprecationWarning, match=r"enhance\.psf is deprecated.*enhance\.observation\.psf"):
        old = importlib.import_module("enhance.psf")
    sys.modules.pop("enhance.psf")
    assert old.psf_kernel is new.psf_kernel
