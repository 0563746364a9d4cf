"""Every code snippet of the user guide (docs/guide/*.rst, docs/index.rst) and of the README runs as written.

Python snippets are doctests (``>>>``); each page runs top to bottom in a fresh folder, with the
shell commands of its ``console`` blocks (``$ enhance ...``) run in order between them, so a page may
use the files that an earlier snippet wrote. The README's ``python`` blocks run in order in one
namespace. Commands that install software or run the repository's Makefile are not run here
(``NOT_RUN``): CI runs ``make test`` and ``make docs`` itself.
"""

import doctest
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = [*sorted((ROOT / "docs" / "guide").glob("*.rst")), ROOT / "docs" / "index.rst"]
README = ROOT / "README.md"

# Shell commands shown but not run by the tests: installs, the venv, the Makefile, multi-process
# training (the same command without torchrun runs in the training page).
NOT_RUN = ("pip ", "python -m venv", "source ", "make ", "torchrun ", "git ")
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _shell(command):
    """Run one documented shell command; fail with its output when it fails."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    done = subprocess.run(shlex.split(command), capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        msg = f"`{command}` exited with {done.returncode}:\n{done.stdout}\n{done.stderr}"
        raise AssertionError(msg)


def _console_commands(text):
    """Replace each ``$ command`` line of a console code block by a doctest line running it."""
    out, in_console = [], False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(".. code-block::"):
            in_console = stripped.endswith("console")
        elif in_console and stripped and not line.startswith((" ", "\t")):
            in_console = False
        if in_console and stripped.startswith("$ "):
            command = stripped[2:]
            indent = line[: len(line) - len(line.lstrip())]
            line = "" if command.startswith(NOT_RUN) else f"{indent}>>> _shell({command!r})"
        out.append(line)
    return "\n".join(out)


def _shell_lines(text):
    return [line.strip()[2:] for line in text.splitlines() if line.strip().startswith("$ ")]


@pytest.mark.slow
@pytest.mark.parametrize("page", GUIDE, ids=lambda p: p.name)
def test_guide_page_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = _console_commands(page.read_text())
    test = doctest.DocTestParser().get_doctest(text, {"_shell": _shell}, page.stem, str(page), 0)
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} snippets of {page.name} failed"


def test_guide_has_snippets():
    assert GUIDE, "no guide pages found"
    for page in GUIDE:
        if page.parent.name == "guide" and page.name == "index.rst":
            continue  # the guide's table of contents
        text = page.read_text()
        assert ">>>" in text or "$ " in text, f"{page.name} has no snippet"


def test_guide_shell_commands_are_run_or_listed():
    # A command the tests do not run must be one of the NOT_RUN kinds, not a typo of `enhance`.
    for page in GUIDE:
        for command in _shell_lines(page.read_text()):
            assert command.startswith(("enhance ", "mkdir ", *NOT_RUN)), f"{page.name}: unexpected command {command!r}"


def _readme_blocks():
    """The README's fenced code blocks, in order, as ``(language, code)``."""
    return re.findall(r"^```(\w*)\n(.*?)^```", README.read_text(), flags=re.S | re.M)


@pytest.mark.slow
def test_readme_snippets_run(tmp_path, monkeypatch):
    # In order, in one folder and one namespace: Python blocks run whole, and the `enhance` commands
    # of shell blocks run in between (installs and `make` targets are not run here).
    blocks = _readme_blocks()
    assert sum(language == "python" for language, _ in blocks) >= 3, "the README shows three usage examples"
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__"}
    for language, code in blocks:
        if language == "python":
            exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 - the README's own code
        elif language in ("bash", "console", "sh", "shell"):
            for line in code.splitlines():
                command = line.split(" #")[0].strip().removeprefix("$ ").strip()
                if command.startswith("enhance "):
                    _shell(command)
