"""Package discovery under the vigil.* mapping declared in pyproject.toml (setuptools' find
cannot see through package-dir renames, so the rooms' sub-packages are listed here)."""

from setuptools import find_packages, setup

ROOMS = ("models", "pipelines", "services")

packages = ["vigil", *(f"vigil.{sub}" for sub in find_packages("vigil"))]
for room in ROOMS:
    packages += [f"vigil.{room}", *(f"vigil.{room}.{sub}" for sub in find_packages(room))]

setup(packages=packages)
