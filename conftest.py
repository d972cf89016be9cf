"""Loads the numeric-tolerance extension of nbval for every pytest run in this repository.

See tests/nbval_tolerance.py: `pytest --nbval notebooks` then compares words, integers and
layout exactly and decimals within the tolerance set in pyproject.toml.
"""

pytest_plugins = ["tests.nbval_tolerance"]
