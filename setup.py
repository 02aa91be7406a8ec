"""Build hook: generate the gRPC code from proto/ before packaging.

Everything else about the distribution lives in pyproject.toml. The generated
package ``strongroom.v1`` is never edited by hand or committed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

sys.path.insert(0, str(Path(__file__).parent / "proto"))
from generate import generate


class BuildPyWithProtos(build_py):
    def run(self) -> None:
        generate()
        super().run()


setup(
    packages=find_packages(include=["strongroom", "strongroom.*"]),
    cmdclass={"build_py": BuildPyWithProtos},
)
