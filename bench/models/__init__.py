"""Generative models, one module per family; each registers itself with ``bench.registry.register_model``.

Modules whose name starts with ``_`` are not auto-imported; ``base`` holds the shared interface.
"""
