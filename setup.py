"""Package discovery that pyproject.toml cannot express: `server/` installs as `rebac_server`.

Everything else (metadata, dependencies, tool settings) lives in pyproject.toml.
"""

from setuptools import find_packages, setup

_SERVER_PACKAGES = [
    "rebac_server" + name.removeprefix("server")
    for name in find_packages(include=["server", "server.*"])
]

setup(
    packages=[*find_packages(include=["rebac", "rebac.*"]), *_SERVER_PACKAGES],
)
