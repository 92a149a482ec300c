"""tfspec.base: what every layer shares, below all of them.

Errors and diagnostics (``errors``), pinned versions (``versions``), output folders and their manifest
(``outputs``), atomic writes and staging folders (``atomic``), process liveness (``processes``), the one
Jinja environment (``templating``), object-store locations (``locations``), the TF_CONFIG contract
(``tf_config``) and the tf_keras layer catalogue (``catalogue``). Imports nothing else of tfspec's, and
nothing here at package import: each module is imported by its own name.
"""
