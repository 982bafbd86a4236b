"""The lower bounds of a wheel's runtime dependencies, as pip constraints (``name==lowest``).

    python3 packaging/lower_bounds.py WHEEL > lower-bounds.txt
    python3 packaging/lower_bounds.py --verify VENV_PYTHON lower-bounds.txt

scripts/package-check installs graphattach with these constraints and smoke-tests it, so each
``>=`` in pyproject.toml is a version that was tried. ``--verify`` checks the venv got exactly them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from email.parser import Parser

REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*)(?:;(.*))?$")


def lower_bounds(wheel: str) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(name).decode())
    pins = []
    for requirement in metadata.get_all("Requires-Dist") or []:
        match = REQUIREMENT.match(requirement)
        if not match:
            sys.exit(f"lower_bounds: cannot read {requirement!r}")
        package, specifiers, marker = match.group(1), match.group(2), match.group(3) or ""
        if "extra" in marker or ("win32" in marker and "!=" not in marker):
            continue
        lowest = re.search(r">=\s*([0-9][^,\s]*)", specifiers)
        if not lowest:
            sys.exit(f"lower_bounds: {requirement!r} has no lower bound (declare one: >=X)")
        pins.append(f"{package}=={lowest.group(1)}")
    return pins


def verify(python: str, constraints: str) -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed = {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(listed)}
    wrong = []
    for line in open(constraints).read().split():
        package, version = line.split("==")
        got = installed.get(package.lower().replace("_", "-"))
        if got != version:
            wrong.append(f"{package}: {got} instead of {version}")
    if wrong:
        sys.exit("lower_bounds: not the lower bounds: " + "; ".join(wrong))
    print(f"lower_bounds: every dependency at its lower bound ({len(installed)} packages installed)")


if __name__ == "__main__":
    if sys.argv[1] == "--verify":
        verify(sys.argv[2], sys.argv[3])
    else:
        print("\n".join(lower_bounds(sys.argv[1])))
