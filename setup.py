"""Package discovery under the vigil.* mapping declared in pyproject.toml (setuptools' find
cannot see through package-dir renames, so the rooms' sub-packages are listed here)."""

from setuptools import find_packages, setup

ROOMS = ("models", "pipelines", "services")

# vigil/models, vigil/pipelines and vigil/services are symlinks to the rooms (so that editors and
# type checkers follow vigil.*); find_packages walks through them, so the rooms are left out of
# vigil's own walk and listed once below, under their package-dir mapping.
ROOM_LINKS = [pattern for room in ROOMS for pattern in (room, f"{room}.*")]
packages = ["vigil", *(f"vigil.{sub}" for sub in find_packages("vigil", exclude=ROOM_LINKS))]
for room in ROOMS:
    packages += [f"vigil.{room}", *(f"vigil.{room}.{sub}" for sub in find_packages(room))]

setup(packages=packages)
