"""Fixtures of the runtime tests; the helpers live in ``runtime_testing.py`` (a unique module name, so
test files import them without clashing with other folders' conftest modules)."""

from runtime_testing import *  # noqa: F401,F403
