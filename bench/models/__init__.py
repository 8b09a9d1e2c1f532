"""Generative models, one module per family; each registers itself with ``bench.models.registry.register_model``.

Modules whose name starts with ``_`` are not auto-imported; ``base`` holds the shared interface
(at the bottom: ``registry`` imports it, never the other way round).
"""
