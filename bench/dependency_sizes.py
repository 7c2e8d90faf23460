"""Installed size of what each deployment installs, from Pipfile.lock.

    .venv/bin/python -m bench.dependency_sizes

For each set of Pipfile categories a deployment installs (see Pipfile), the
packages the lock pins for them, markers evaluated for this interpreter
(CPython 3.11 on Linux x86_64, as the Lambda image), and the bytes of their
installed files, .pyc included as pip writes them into the image. The files
are those of this environment's installs, which `make setup` made from the
same lock; a package installed here at another version than the lock's is
reported, never guessed. A Zip deployment's limit is 262,144,000 bytes
(250 MiB) unzipped, function code and layers together.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from pathlib import Path

from packaging.markers import Marker

from bench.common import ROOT

ZIP_LIMIT = 262_144_000
SETS = (
    ("Lambda `lambda`: stream functions, weight table", ("lambda",)),
    ("Lambda `lambda` + scikit-learn (other estimators)", ("lambda", "sklearn")),
    ("Lambda `scoring`: the monthly scoring function", ("lambda", "batch")),
    ("Lambda `scoring` + scikit-learn", ("lambda", "batch", "sklearn")),
    ("web image", ("web",)),
    ("[packages]: the whole project (the image before)", ("default",)),
)
MIB = 1024 * 1024


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_packages(lock: dict, categories: tuple[str, ...]) -> dict[str, str]:
    """Name -> pinned version of every package the categories install here."""
    packages = {}
    for category in categories:
        for name, entry in lock[category].items():
            if "markers" in entry and not Marker(entry["markers"]).evaluate():
                continue
            packages[normalized(name)] = entry["version"].removeprefix("==")
    return packages


def installed_bytes(name: str, version: str) -> int:
    distribution = importlib.metadata.distribution(name)
    if distribution.version != version:
        raise SystemExit(f"{name} is {distribution.version} here, {version} in Pipfile.lock: run `make setup`")
    return sum(path.stat().st_size for f in distribution.files or [] if (path := Path(f.locate())).is_file())


def main() -> int:
    lock = json.loads((ROOT / "Pipfile.lock").read_text())
    sizes: dict[str, int] = {}
    print(f"{'deployment':<50}{'categories':<24}{'packages':>9}{'MiB':>9}  Zip (250 MiB)")
    for label, categories in SETS:
        packages = locked_packages(lock, categories)
        for name, version in packages.items():
            if name not in sizes:
                sizes[name] = installed_bytes(name, version)
        total = sum(sizes[name] for name in packages)
        fits = "-" if "lambda" not in categories else "fits" if total <= ZIP_LIMIT else "too big: image only"
        shown = " + ".join("[packages]" if c == "default" else c for c in categories)
        print(f"{label:<50}{shown:<24}{len(packages):>9}{total / MIB:>9.1f}  {fits}")
    largest = sorted(locked_packages(lock, ("lambda", "batch", "sklearn")), key=lambda n: -sizes[n])[:6]
    print("largest in the Lambda images: " + ", ".join(f"{n} {sizes[n] / MIB:.0f}" for n in largest) + " MiB")
    print(f"the project's own code in the image: {code_bytes() / MIB:.1f} MiB")
    return 0


def code_bytes() -> int:
    files = [*(ROOT / "model_service").rglob("*.py"), *ROOT.glob("*_function.py")]
    return sum(f.stat().st_size for f in files)


if __name__ == "__main__":
    raise SystemExit(main())
