"""The ``demo`` profile (the README's main job): every model must define its own demo settings."""

from bench.config import load_profile
from bench.models import registry


def test_demo_profile_loads_at_16_px():
    p = load_profile("demo")
    assert p.name == "demo" and p.data.size == 16
    assert p.eval.max_generated >= p.data.facemask.inliers  # as many samples as training inliers (paper §4.3)


def test_every_model_has_demo_settings():
    # A model without a "demo" entry would silently get its paper defaults (e.g. 400 epochs) in the demo.
    names = [n for n in registry.names() if registry.get(n).cls.__module__.startswith("bench.models.")]
    assert {"gan", "sdnrgan3", "robustot", "vqvae", "rvqvae"} <= set(names)
    for name in names:  # the shipped models (tests may register toy ones)
        spec = registry.get(name)
        assert "demo" in spec.profile_defaults, name
        spec.make_config("demo")
