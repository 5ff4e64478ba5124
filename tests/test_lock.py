"""requirements/test.lock against pyproject.toml: the locked test environment meets
every declared requirement, every pin is hashed, and the packages whose internals
the code uses are held below their next minor version."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "test.lock"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def locked(text: str, env: dict[str, str] | None = None) -> dict[str, Version]:
    """The pins of a lock that apply to this interpreter (or to `env`'s markers)."""
    pins: dict[str, Version] = {}
    for line in text.splitlines():
        m = PIN.match(line)
        if m is None:
            continue
        name, version, marker = m.groups()
        if marker is None or Marker(marker).evaluate(env):
            pins[canonicalize_name(name)] = Version(version)
    return pins


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [
        Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]
    ]


def unmet(reqs: list[Requirement], pins: dict[str, Version]) -> list[str]:
    out = []
    for r in reqs:
        if r.marker is not None and not r.marker.evaluate({"extra": "test"}):
            continue
        have = pins.get(canonicalize_name(r.name))
        if have is None or not r.specifier.contains(have, prereleases=True):
            out.append(f"{r} (locked: {have})")
    return out


def test_the_lock_meets_every_declared_requirement():
    assert unmet(declared(), locked(LOCK.read_text())) == []


def test_a_requirement_the_lock_does_not_meet_is_found():
    pins = locked("textual==8.2.8 \\\nhttpx==0.29.0\nnumpy==2.2.6 ; python_full_version < '3.11'\n")
    reqs = [Requirement("textual>=8.3"), Requirement("httpx<1"), Requirement("respx>=0.21")]
    assert unmet(reqs, pins) == ["textual>=8.3 (locked: 8.2.8)", "respx>=0.21 (locked: None)"]
    older = locked("numpy==2.2.6 ; python_full_version < '3.11'\n",
                   {"python_full_version": "3.10.4"})  # fmt: skip
    assert older == {"numpy": Version("2.2.6")}


def test_every_pin_is_hashed():
    blocks = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text())
    pins = [b for b in blocks if PIN.match(b.splitlines()[0])]
    assert len(pins) > 40
    assert [b.splitlines()[0] for b in pins if "--hash=sha256:" not in b] == []


def test_packages_used_from_the_inside_are_held_below_their_next_minor():
    reqs = {canonicalize_name(r.name): r for r in declared()}
    pins = locked(LOCK.read_text())
    for name in ("textual", "textual-plotext", "plotext", "httpcore"):
        v = pins[name]
        next_minor = Version(f"{v.major}.{v.minor + 1}")
        assert reqs[name].specifier.contains(v)
        assert not reqs[name].specifier.contains(next_minor), name
