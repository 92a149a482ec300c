"""tfspec: a declarative config-as-code compiler for TensorFlow model deployment.

Public API::

    import tfspec
    result = tfspec.compile("deploy.yaml", env="prod")
    result.plan, result.files, result.diagnostics
"""

from typing import TYPE_CHECKING

from tfspec.base.lazy import lazy_attributes
from tfspec.base.versions import TFSPEC_VERSION as __version__

if TYPE_CHECKING:
    from tfspec.compiler.pipeline import CompileResult
    from tfspec.compiler.pipeline import compile_spec as compile
    from tfspec.base.errors import Diagnostic, SpecError, TfspecError

__all__ = ["CompileResult", "Diagnostic", "SpecError", "TfspecError", "__version__", "compile"]

# Imported on first use (PEP 562): the CLI imports this package first, and a command that compiles
# nothing (an up-to-date `build`, `--help`) does not pay for the spec models.
_LAZY: dict[str, tuple[str, str]] = {
    "CompileResult": ("tfspec.compiler.pipeline", "CompileResult"),
    "compile": ("tfspec.compiler.pipeline", "compile_spec"),
    "Diagnostic": ("tfspec.base.errors", "Diagnostic"),
    "SpecError": ("tfspec.base.errors", "SpecError"),
    "TfspecError": ("tfspec.base.errors", "TfspecError"),
}


__getattr__ = lazy_attributes(__name__, _LAZY)
