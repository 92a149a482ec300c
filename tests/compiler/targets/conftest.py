"""Fixtures of the target tests; the helpers live in ``targets_testing.py`` (a unique module name, so
test files import them without clashing with other folders' conftest modules)."""

from targets_testing import *  # noqa: F401,F403
