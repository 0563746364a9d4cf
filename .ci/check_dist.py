"""`make dist`: the sdist and the wheel in DIST hold every file of the package, data files included.

Every file that git tracks under src/enhance (the modules, the sample cut-outs, the weights, the model cards
and the registry) must be in the wheel (as enhance/...) and in the sdist (as solar_enhance-VERSION/src/enhance/...),
and the wheel must declare the `enhance` command. Exits 1 naming what is missing.
"""

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def package_files() -> set[str]:
    """The package's files, relative to src/: those git tracks (or, outside a checkout, those on disk)."""
    try:
        listed = subprocess.run(["git", "ls-files", "src/enhance"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.split()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        listed = [str(p.relative_to(ROOT)) for p in (ROOT / "src" / "enhance").rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts]  # fmt: skip
    return {name.removeprefix("src/") for name in listed}


def main(dist: str) -> int:
    version = {}
    exec((ROOT / "src" / "enhance" / "_version.py").read_text(), version)  # noqa: S102 - our own one-line file
    version = version["__version__"]
    wheel = Path(dist) / f"solar_enhance-{version}-py3-none-any.whl"
    sdist = Path(dist) / f"solar_enhance-{version}.tar.gz"
    expected = package_files()
    problems = []
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = set(archive.namelist())
        entry_points = archive.read(f"solar_enhance-{version}.dist-info/entry_points.txt").decode()
    with tarfile.open(sdist) as archive:
        in_sdist = {name.removeprefix(f"solar_enhance-{version}/src/") for name in archive.getnames()}
    for name, found in (("wheel", in_wheel), ("sdist", in_sdist)):
        missing = sorted(expected - found)
        if missing:
            problems.append(f"{name} lacks {len(missing)} files: {', '.join(missing[:8])}")
    if "enhance = enhance.__main__:main" not in entry_points:
        problems.append(f"the wheel does not declare the enhance command: {entry_points!r}")
    data = sorted(name for name in expected if name.startswith("enhance/data/") and not name.endswith(".py"))
    for problem in problems:
        sys.stderr.write(f"check_dist: {problem}\n")
    if not problems:
        sys.stdout.write(f"check_dist: {wheel.name} and {sdist.name} hold all {len(expected)} files of the package, "
                         f"{len(data)} of them data files (samples, weights, model cards, registry)\n")  # fmt: skip
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "dist"))
