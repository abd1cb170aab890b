"""TOML reading for the harness's own files (spec files, the known-failures list): the standard library's tomllib,
or its backport on Python 3.10 (declared for it in pyproject.toml), chosen here once."""

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # the backport, declared for Python 3.10 in pyproject.toml
    import tomli as tomllib

__all__ = ["tomllib"]
