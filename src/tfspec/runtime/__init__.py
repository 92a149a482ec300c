"""tfspec.runtime: executes a plan's steps with TensorFlow (one module per step kind).

Importing this package does not import TensorFlow; the step modules do, after setting
``TF_USE_LEGACY_KERAS=1``.
"""
