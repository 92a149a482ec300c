"""tfspec.io: the drivers that write, beside the pure compiler.

``write`` (atomic output folders, manifests, staging clean-up; the runtime's dist folder uses it too),
``batch`` (``tfspec build FOLDER``: discovery, an input-hash cache, worker processes) and ``watch``
(``tfspec watch``). The compiler (``tfspec.compiler``) never imports this package.
"""
