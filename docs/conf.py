"""Sphinx configuration of the solar-enhance documentation (built offline by ``make docs``)."""

import os
import warnings
from pathlib import Path

import enhance

# The examples run on CPU threads of their own; keep them from oversubscribing a small machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Figures are drawn off-screen.
os.environ.setdefault("MPLBACKEND", "agg")

project = "solar-enhance"
author = "solar-enhance developers"
copyright = "solar-enhance developers"  # noqa: A001 (the name Sphinx reads)
release = enhance.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "**.ipynb_checkpoints",
    "examples/README.rst",
    # Reports of 0.4.0's noise-range experiment on the light models, kept as the record that
    # validation/history.md cites; they are not pages of the site.
    "validation/reports/noise_range_light",
]
default_role = "py:obj"

# Nothing is fetched at build time: no intersphinx inventories. References to objects of other
# packages, the standard library's included (``enum.StrEnum`` in a "Bases:" line), therefore stay
# unresolved (shown as code); every reference to this package must resolve (`make docs` builds with -n).
intersphinx_mapping = {}
_OTHER_PACKAGES = (
    "argparse|astropy|concurrent|copy|dask|distributed|enum|h5py|http|matplotlib|numpy|onnx|onnxruntime|os|pandas"
    "|pathlib|platform|safetensors|scipy|skimage|sunpy|torch|typing"
)
nitpick_ignore_regex = [(r"py:.*", rf"({_OTHER_PACKAGES})(\..*)?")]

# -- API reference ------------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autosummary_ignore_module_all = False
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"
autodoc_inherit_docstrings = False

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validate = True
# Every public function, class and method has a docstring (GL08) that opens with a summary (SS01),
# documents each of its parameters (PR01: none missing, PR02: none unknown, PR07: each described,
# PR10: well formed) and its return value (RT01: a Returns section, RT03: the value described), and
# carries an example (EX01). The examples run as doctests in `make test`.
numpydoc_validation_checks = {"GL08", "SS01", "PR01", "PR02", "PR07", "PR10", "RT01", "RT03", "EX01"}
numpydoc_validation_exclude = {
    r"\._[^.]*$",  # private names
    r"^tests\.",
    # PyTorch's module protocol: ``forward`` is called as ``net(x)`` (documented on the class) and
    # ``extra_repr`` only feeds ``repr``.
    r"\.forward$",
    r"\.extra_repr$",
    # Constants are documented in their module's text, as data rather than callables.
    r"\.[A-Z][A-Z0-9_]+$",
}

# -- Gallery --------------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": ["examples"],
    "gallery_dirs": ["generated/gallery"],
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": (True, "jshtml"),
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "backreferences_dir": None,
    "reset_modules": ("matplotlib",),
    "show_memory": False,
    "min_reported_time": 1,
}

# The examples run to make the gallery; their warnings belong in their output, not the build log.
warnings.filterwarnings("ignore", category=UserWarning, message="Matplotlib is currently using agg")

# -- HTML -----------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"solar-enhance {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "use_edit_page_button": False,
    # No web fonts, analytics or version switcher: the built pages work from a local folder.
    "icon_links": [],
}
html_show_sourcelink = False
html_context = {"default_mode": "light"}

myst_enable_extensions = []
myst_heading_anchors = 3

# The validation reports of ``enhance validate`` (included from docs/validation/reports) start at a
# second-level heading in places.
suppress_warnings = ["myst.header"]


def _skip_class_data(app, what, name, obj, skip, options):
    """Class attributes that are data (dataclass fields) are documented in the class's Parameters."""
    if what == "class" and not (callable(obj) or isinstance(obj, (property, classmethod, staticmethod))):
        return True
    return None


def _remove_stale_api_pages(app):
    """Delete the pages of ``generated/api`` that no autosummary table lists any more (a renamed, removed or
    deprecated name): autosummary writes pages but never deletes one, and a stale page would still be read."""
    from sphinx.ext.autosummary.generate import find_autosummary_in_files

    folder = Path(app.srcdir, "generated", "api")
    listed, pending = set(), [Path(app.srcdir, "api", "index.rst")]
    while pending:
        names = {entry.name for entry in find_autosummary_in_files([str(pending.pop())])} - listed
        listed |= names
        pending += [folder / f"{name}.rst" for name in names if (folder / f"{name}.rst").is_file()]
    for page in folder.glob("*.rst"):
        if page.stem not in listed:
            page.unlink()


def setup(app):
    app.connect("autodoc-skip-member", _skip_class_data)
    app.connect("builder-inited", _remove_stale_api_pages, priority=600)  # after autosummary has written its pages
