"""tfspec: a declarative config-as-code compiler for TensorFlow model deployment.

Public API::

    import tfspec
    result = tfspec.compile("deploy.yaml", env="prod")
    result.plan, result.files, result.diagnostics
"""

from tfspec.compiler.pipeline import CompileResult
from tfspec.compiler.pipeline import compile_spec as compile
from tfspec.compiler.versions import TFSPEC_VERSION as __version__
from tfspec.spec.errors import Diagnostic, SpecError, TfspecError

__all__ = ["CompileResult", "Diagnostic", "SpecError", "TfspecError", "__version__", "compile"]
