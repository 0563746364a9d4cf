"""What the README and the CHANGELOG claim agrees with each other and with the code: the compression the README
measured, the network the browser page runs, the files ``enhance run --weights`` takes."""

import re
from pathlib import Path

import pytest

from enhance.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
CHANGELOG = (ROOT / "CHANGELOG.md").read_text()


def test_the_changelog_quotes_the_compression_the_readme_measured():
    found = re.search(r"([\d.]+)x smaller for the continuum sample\s+and ([\d.]+)x for the magnetogram", README)
    assert found is not None
    continuum, magnetogram = found.groups()
    release = CHANGELOG.split("\n## ")[1]  # the newest release's notes
    assert f"{continuum} times smaller for the continuum sample and {magnetogram} times for the magnetogram" in (
        " ".join(release.split())
    )
    assert "3-6 times" not in release


def test_readme_and_changelog_name_the_network_the_page_loads():
    app = (ROOT / "web" / "src" / "app.js").read_text()
    models = set(re.findall(r"models/enhance_([a-z-]+)_\$\{kind\}\.onnx", app))
    assert models == {"paper-light"}  # the page loads the paper's light network
    browser = README.split("## Enhance in the browser")[1].split("\n## ")[0]
    assert "the paper's light network runs in the browser" in " ".join(browser.split())
    bullets = [" ".join(item.split()) for item in CHANGELOG.split("\n## ")[1].split("\n- ")]
    claims = [item for item in bullets if "runs" in item and ("browser page" in item or "enhance web" in item)]
    assert claims
    for claim in claims:
        assert "paper's light network" in claim or "(`paper-light`)" in claim, claim


def test_run_help_names_onnx_files_for_weights(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--help"])
    assert info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--weights FILE a network file to use instead of a shipped model: safetensors weights" in help_text
    assert ".onnx graph (enhance export)" in help_text
