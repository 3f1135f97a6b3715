"""A virtual environment holding only openmj and the distributions its chosen extras require.

Built from this environment's own installed files (symlinked, nothing downloaded), so a test can
run `openmj` exactly as a user who ran `pip install 'openmj[local]'` would, without the dev tools
(pytest, onnx before it moved to [local], schemathesis …) that this environment also has.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

from packaging.requirements import Requirement


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(root: str, extras: list[str]) -> set[str]:
    """The normalised names of `root[extras]` and everything it requires, transitively."""
    todo: list[tuple[str, tuple[str, ...]]] = [(root, tuple(extras))]
    seen: set[tuple[str, tuple[str, ...]]] = set()
    while todo:
        name, wanted = todo.pop()
        if (_normal(name), wanted) in seen:
            continue
        seen.add((_normal(name), wanted))
        try:
            requires = md.distribution(name).requires or []
        except md.PackageNotFoundError:
            continue  # an optional requirement that is not installed: not needed
        for text in requires:
            req = Requirement(text)
            envs = [{"extra": e} for e in wanted] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                todo.append((req.name, tuple(sorted(req.extras))))
    return {name for name, _ in seen}


def build(dest: Path, extras: list[str]) -> Path:
    """Create the environment at `dest`; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True)
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    target = Path(
        subprocess.run(
            [str(dest / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    wanted = closure("openmj", extras)
    for dist in md.distributions():
        if _normal(dist.metadata["Name"]) not in wanted:
            continue
        for file in dist.files or []:
            path = Path(str(dist.locate_file(file))).resolve()
            try:
                rel = path.relative_to(site)
            except ValueError:
                continue  # console scripts and data outside site-packages
            link = target / rel
            if path.exists() and not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(path)
    return dest / "bin" / "python"
