"""tfspec.search: ``tfspec search``, an Optuna study over a spec's values (beside the runtime; imports
TensorFlow through it and Optuna). The compiler side (the ``search`` section and its checks) is
``tfspec.compiler.search``."""

from .driver import SearchOutcome, TrialRecord, default_storage, run_search

__all__ = ["SearchOutcome", "TrialRecord", "default_storage", "run_search"]
