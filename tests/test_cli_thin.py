"""`cli.py` parses arguments and prints: it tells the library's errors and statuses apart by type, never by
their text, and decides nothing the library should (ARCHITECTURE.md, "Where to change what")."""

import ast
from pathlib import Path

import pytest

CLI = Path(__file__).resolve().parents[1] / "src" / "enhance" / "cli.py"

#: Methods that read a decision out of a text.
_TEXT_TESTS = {"startswith", "endswith", "split", "rsplit", "partition", "rpartition", "find", "rfind", "index",
               "rindex", "count", "replace", "lower", "upper", "casefold", "match", "search"}  # fmt: skip
#: Fragments of the library's (and the OS's) messages that code once matched on; an output line of the CLI's
#: own ("no space left on device in OUT: ...") is lower case and not one of them.
_MESSAGE_FRAGMENTS = ("No space left on device", "Disk quota", "output exists and is complete", "is complete",
                      "written by solar-enhance")  # fmt: skip


def _is_message(node) -> bool:
    """Whether ``node`` is the text of an error or a record: ``str(x)``, ``x.args``, ``x["reason"]``, a part of one."""
    if isinstance(node, ast.Subscript) and _is_message(node.value):
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "str":
        return True
    if isinstance(node, ast.Attribute) and node.attr in ("args", "strerror"):
        return True
    return isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and node.slice.value == "reason"


def _is_status(node) -> bool:
    return isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and node.slice.value == "status"


def _decisions_on_text(tree) -> list[str]:
    """Each place where the CLI branches on the text of a message, or on a status's spelling."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_is_message(operand) for operand in operands):
                found.append(f"line {node.lineno}: compares a message: {ast.unparse(node)}")
            if any(_is_status(o) for o in operands) and any(isinstance(o, ast.Constant) for o in operands):
                found.append(f"line {node.lineno}: a status by its spelling, not `Status`: {ast.unparse(node)}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _TEXT_TESTS:
            if _is_message(node.func.value):
                found.append(f"line {node.lineno}: reads a message: {ast.unparse(node)}")
    return found


def test_the_cli_decides_nothing_on_message_text():
    tree = ast.parse(CLI.read_text())
    assert _decisions_on_text(tree) == []
    literals = [node for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    matched = [
        (node.lineno, fragment) for node in literals for fragment in _MESSAGE_FRAGMENTS if fragment in node.value
    ]
    assert matched == []


def test_the_cli_asks_no_program_and_guesses_no_pattern():
    tree = ast.parse(CLI.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)
                for alias in node.names if isinstance(node, ast.Import)}  # fmt: skip
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0}
    assert not imported & {"subprocess", "platform", "re", "glob", "fnmatch", "shutil", "tomllib"}
    text = CLI.read_text()
    assert "lscpu" not in text
    assert "*?[" not in text  # batch mode by glob characters: `enhance.inference.distributed.is_batch`
    assert "noise_unit" not in text  # which family a network is: the library's business


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('if "No space left on device" in record["reason"]:\n    pass', "compares a message"),
        ('if str(err).startswith("output exists"):\n    pass', "reads a message"),
        ('text = record["reason"].split(": ", 1)[-1]', "reads a message"),
        ('if record["status"] == "skipped":\n    pass', "a status by its spelling"),
        ("if err.args[0] == 28:\n    pass", "compares a message"),
    ],
)
def test_the_check_finds_each_kind_of_text_matching(source, expected):
    """The check above would have caught what `cli.py` did before (each line is taken from it or alike)."""
    (finding,) = _decisions_on_text(ast.parse(source))
    assert expected in finding


def test_typed_checks_pass_the_check():
    source = "if isinstance(record['error'], DiskFullError) and record['status'] is Status.FAILED:\n    pass"
    assert _decisions_on_text(ast.parse(source)) == []
