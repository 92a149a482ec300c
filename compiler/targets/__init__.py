"""Renderers of the target kinds; importing this package registers them with ``compiler.render``."""
