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
    page = (ROOT / "web" / "index.html").read_text()
    menu = page.split('<select id="model">')[1].split("</select>")[0]
    assert re.findall(r'<option value="([a-z-]+)"', menu) == ["light", "paper-light"]
    assert re.findall(r'<option value="([a-z-]+)" selected>', menu) == ["light"]  # the default light model
    makefile = (ROOT / "Makefile").read_text()
    assert set(re.findall(r"enhance export --model ([a-z-]+) -o \$\(WEB_DIST\)", makefile)) == {"light", "paper-light"}
    browser = " ".join(README.split("## Enhance in the browser")[1].split("\n## ")[0].split())
    assert "the default light model (Wiener-Enhance, `--model light`) runs in the browser" in browser
    assert "the paper's light network (`paper-light`) can be chosen instead" in browser
    bullets = [" ".join(item.split()) for item in CHANGELOG.split("\n## ")[1].split("\n- ")]
    claims = [item for item in bullets if "runs" in item and ("browser page" in item or "enhance web" in item)]
    assert claims
    for claim in claims:
        assert "default light model (`light`)" in claim, claim
        assert "paper's light network (`paper-light`)" in claim, claim


def test_run_help_names_onnx_files_for_weights(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--help"])
    assert info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--weights FILE a network file to use instead of a shipped model: safetensors weights" in help_text
    assert ".onnx graph (enhance export)" in help_text
