"""Jinja2 templates, one folder per target (``tf_serving/``, ``tflite/``, ``gpu_cluster/``).

Templates only lay out what the compiler computed: loops and conditionals, no logic. They are loaded
through ``importlib.resources`` so an installed tfspec finds them.
"""
