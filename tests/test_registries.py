"""The one registry class behind models, datasets, corruptions and detectors (bench/registries.py): the name rules, the
"name taken" rule (a plug-in never takes a built-in's name, two plug-ins never share one), origins, lazy built-ins,
and the model registry sitting above bench.models.base (no import circle).

Plug-ins are tiny files written into tmp_path and loaded with ``bench.plugins.load``; every test restores what was
registered and loaded before it."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench import detectors, plugins, registries
from bench.datasets import corruptions
from bench.datasets import registry as datasets
from bench.errors import BenchError
from bench.models import registry as models

REPO = Path(__file__).resolve().parents[1]
KINDS = ("model", "dataset", "corruption", "detector")

# One plug-in per kind; NAME is the registered name, OBJ the class or function's name.
SOURCES = {
    "model": """
        from dataclasses import dataclass
        from bench.models.base import GenerativeModel
        from bench.models.registry import register_model

        @dataclass
        class Cfg:
            pass

        @register_model(NAME, config=Cfg, profiles={"paper": {}, "cpu": "paper", "demo": "paper", "smoke": "paper"})
        class OBJ(GenerativeModel):
            fit = sample = state_dict = load_state_dict = lambda *a: None
        """,
    "dataset": """
        from bench.datasets.folder import TwoFolderDataset
        from bench.datasets.registry import DatasetCounts, register_dataset

        @register_dataset(NAME, title="T", profiles={"paper": DatasetCounts(10, 10, 10, 10), "cpu": "paper",
                                                     "demo": "paper", "smoke": "paper"})
        class OBJ(TwoFolderDataset):
            pass
        """,
    "corruption": """
        from dataclasses import dataclass
        from bench.datasets.corruptions import register_corruption

        @dataclass
        class P:
            pass

        @register_corruption(NAME, params=P)
        def OBJ(image, rng, params):
            return image.copy()
        """,
    "detector": """
        from dataclasses import dataclass
        from bench.detectors import register_detector

        @dataclass(frozen=True)
        class P:
            pass

        @register_detector(NAME, params=P)
        def OBJ(images, params, seed):
            return images.double().mean((1, 2, 3))
        """,
}

# A built-in of each kind: (name, its class or function's name, where it is defined).
BUILT_INS = {
    "model": ("gan", "GAN", "bench.models.gan.GAN"),
    "dataset": ("facemask", "FaceMask", "bench.datasets.facemask.FaceMask"),
    "corruption": ("rectangles", "rectangles", "bench.datasets.corruptions.rectangles"),
    "detector": ("pca", "_pca", "bench.detectors._pca"),
}


def plugin_source(kind: str, name: str, obj: str) -> str:
    return textwrap.dedent(SOURCES[kind]).replace("NAME", repr(name)).replace("OBJ", obj)


def write_plugin(folder: Path, kind: str, name: str, obj: str, file: str = "plugin.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file
    path.write_text(plugin_source(kind, name, obj))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def _restored():
    """Undo every registration, plug-in import and plug-in module made by a test."""
    registries.load_all()
    saved = [(r, dict(r._entries)) for r in list(registries._REGISTRIES.values())]
    state = [(d, dict(d)) for d in (plugins._loaded, plugins._owners, plugins._files)]
    modules = set(sys.modules)
    yield
    for r, entries in saved:
        r._entries.clear()
        r._entries.update(entries)
    for d, before in state:
        d.clear()
        d.update(before)
    for m in set(sys.modules) - modules:
        if m.startswith(("bench_plugin_", "fakepkg_")):
            sys.modules.pop(m, None)


# ---- one class, one set of rules ---------------------------------------------------------------------------------


def test_every_kind_uses_the_one_registry_class_and_name_pattern():
    assert registries.registry_of("model") is models.MODELS
    assert registries.registry_of("dataset") is datasets.DATASETS
    assert registries.registry_of("corruption") is corruptions.CORRUPTIONS
    assert registries.registry_of("detector") is detectors.DETECTORS
    for kind in KINDS:
        assert type(registries.registry_of(kind)) is registries.Registry
    assert models.NAME_PATTERN is datasets.NAME_PATTERN is detectors.NAME_PATTERN is registries.NAME_PATTERN
    with pytest.raises(BenchError, match="unknown kind of plug-in 'widget': choose from model, dataset"):
        registries.registry_of("widget")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bad", ["Has Space", "", "9lives", "Upper", "a" * 41, "dots.no", 5, None])
def test_bad_names_are_refused_alike_for_every_kind(kind, bad, tmp_path):
    source = plugin_source(kind, "PLACEHOLDER", "Thing").replace("'PLACEHOLDER'", repr(bad))
    path = tmp_path / "bad_name.py"
    path.write_text(source)
    with pytest.raises(BenchError) as err:
        plugins.load(str(path))
    msg = str(err.value)
    assert f"bad {kind} name {bad!r}" in msg and "use lower-case letters, digits, - or _ (at most 40" in msg, msg
    assert len(msg.splitlines()) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_good_names_pass_for_every_kind(kind, tmp_path):
    for i, name in enumerate(["x", "my-thing_2", "a" * 40]):
        plugins.load(str(write_plugin(tmp_path / str(i), kind, name, "Thing")))
        assert name in registries.registry_of(kind).names()


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_name_is_one_line_with_the_choices(kind):
    registry = registries.registry_of(kind)
    with pytest.raises(BenchError) as err:
        registry.get("no-such-name")
    msg = str(err.value)
    assert msg.startswith(f"unknown {kind} 'no-such-name': choose from {', '.join(registry.names())}"), msg
    assert len(msg.splitlines()) == 1


def test_the_kinds_keep_their_own_listing_order_and_messages():
    assert models.names()[:2] == ["rvqvae", "vqvae"] and models.names()[-5:] == [
        "replay",
        "replay-inliers",
        "collapse",
        "replay-blur",
        "replay-noise",
    ]  # the paper's order
    assert corruptions.names() == sorted(corruptions.names()) and datasets.names() == sorted(datasets.names())
    with pytest.raises(BenchError, match=r"unknown model 'nosuch': choose from rvqvae, vqvae, .* --plugin FILE.py"):
        models.get("nosuch")


def test_wrong_objects_are_refused_by_the_kind_check():
    @dataclasses.dataclass
    class P:
        a: int = 1

    with pytest.raises(BenchError, match="register_corruption decorates a function"):
        corruptions.register_corruption("test-not-callable", params=P)(42)
    with pytest.raises(BenchError, match="register_detector decorates a function"):
        detectors.register_detector("test-not-callable", params=P)(42)
    with pytest.raises(BenchError, match="register_dataset decorates a bench.api.Dataset subclass"):
        datasets.register_dataset("test-not-a-dataset", title="T", profiles={})(P)
    with pytest.raises(BenchError, match="register_model decorates a bench.api.GenerativeModel subclass"):
        models.register_model("test-not-a-model", config=P, profiles={})(P)
    for kind in KINDS:
        assert not [n for n in registries.registry_of(kind).names() if n.startswith("test-")]


# ---- a plug-in never takes a built-in's name ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_plugin_cannot_take_a_builtin_name_even_with_the_same_class_name(kind, tmp_path):
    name, obj, dotted = BUILT_INS[kind]
    registry = registries.registry_of(kind)
    before = registry.entry(name)
    path = write_plugin(tmp_path, kind, name, obj)
    with pytest.raises(BenchError) as err:
        plugins.load(str(path))
    msg = str(err.value)
    assert msg.startswith(f"plug-in {path} (--plugin): ")
    assert msg.endswith(f"{kind} name '{name}' is taken by the built-in {dotted}: pick another name"), msg
    assert len(msg.splitlines()) == 1
    assert registry.entry(name) is before and registry.origin(name) == registries.BUILT_IN


@pytest.mark.parametrize("kind, command", [("model", "models"), ("dataset", "datasets"),
                                           ("corruption", "datasets"), ("detector", "datasets")])  # fmt: skip
def test_cli_says_so_in_one_line_with_exit_2(kind, command, tmp_path, capsys):
    from bench.cli import main

    name, obj, dotted = BUILT_INS[kind]
    path = write_plugin(tmp_path, kind, name, obj)
    assert main([command, "--plugin", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: plug-in ") and "Traceback" not in err, err
    assert f"{kind} name '{name}' is taken by the built-in {dotted}: pick another name" in err


def test_a_plugin_loaded_first_still_finds_the_builtins_in_place(tmp_path):
    """In a fresh process nothing is loaded yet: a plug-in registering RVQ-VAE's detector name (registered by
    bench/models/rvqvae.py, not bench/detectors.py) is refused all the same, and bench.models.base does not import
    the model registry (registry imports base, never the other way round)."""
    path = write_plugin(tmp_path, "detector", "rvqvae", "rvqvae_detector")
    script = textwrap.dedent(f"""
        import sys
        import bench.models.base
        assert "bench.models.registry" not in sys.modules and "bench.registry" not in sys.modules, "base imported it"
        import bench.models.registry, bench.detectors
        assert "bench.models.rvqvae" not in sys.modules, "the built-ins are loaded already: nothing is tested"
        from bench import plugins
        from bench.errors import BenchError
        try:
            plugins.load({str(path)!r})
        except BenchError as e:
            print(e)
        print(bench.detectors.DETECTORS.origin("rvqvae"))
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("BENCH_PLUGINS", None)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].endswith(
        "detector name 'rvqvae' is taken by the built-in bench.models.rvqvae.rvqvae_detector: pick another name"
    ), r.stdout
    assert lines[1] == "built-in"


def test_two_plugins_cannot_share_a_name(tmp_path):
    first = write_plugin(tmp_path / "a", "model", "test-shared", "Shared")
    second = write_plugin(tmp_path / "b", "model", "test-shared", "Shared")  # same file name, other folder
    plugins.load(str(first))
    holder = models.get("test-shared").cls
    with pytest.raises(BenchError) as err:
        plugins.load(str(second))
    msg = str(err.value)
    assert (
        f"model name 'test-shared' is taken by {holder.__module__}.Shared (--plugin {first}): pick another name" in msg
    )
    assert len(msg.splitlines()) == 1
    assert models.get("test-shared").cls is holder


@pytest.mark.parametrize("kind", ["corruption", "detector", "dataset"])
def test_two_plugins_cannot_share_a_name_of_any_kind(kind, tmp_path):
    plugins.load(str(write_plugin(tmp_path / "a", kind, "test-shared", "Thing", "one.py")))
    with pytest.raises(BenchError, match=f"{kind} name 'test-shared' is taken by bench_plugin_one_"):
        plugins.load(str(write_plugin(tmp_path / "b", kind, "test-shared", "Other", "two.py")))


def test_registering_the_same_object_again_is_allowed():
    spec = corruptions.get("rectangles")
    corruptions.register_corruption("rectangles", params=corruptions.RectanglesParams)(corruptions.rectangles)
    assert corruptions.get("rectangles").fn is spec.fn and corruptions.origin_of("rectangles") == "built-in"
    gan, order = models.get("gan"), models.names()
    models.register_model("gan", config=gan.config_cls, profiles=gan.profile_defaults, title=gan.title,
                          paper_name=gan.paper_name, paper_rank=gan.paper_rank)(gan.cls)  # fmt: skip
    assert models.get("gan").cls is gan.cls and models.origin_of("gan") == "built-in" and models.names() == order


def test_a_plugin_module_imported_again_registers_again(tmp_path):
    path = write_plugin(tmp_path, "model", "test-again", "Again")
    info = plugins.load(str(path))
    first = models.get("test-again").cls
    del sys.modules[info.module], plugins._loaded[str(path)]  # as if imported anew (e.g. another test)
    plugins.load(str(path))
    again = models.get("test-again").cls
    assert again is not first and again.__qualname__ == "Again"


def test_a_builtin_cannot_be_removed_and_assignment_is_refused():
    with pytest.raises(BenchError, match="model 'gan' is built-in: it cannot be removed"):
        models.MODELS.remove("gan")
    with pytest.raises(TypeError, match="register a model with register_model"):
        models._REGISTRY["x"] = models.get("gan")


# ---- origin ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_builtins_are_built_in(kind):
    registry = registries.registry_of(kind)
    for name in registry.names():
        assert registry.origin(name) == "built-in" == registries.BUILT_IN
    assert json.loads(json.dumps(registry.origin(BUILT_INS[kind][0]))) == "built-in"


def test_model_origin_of_for_builtins():
    assert all(models.origin_of(n) == "built-in" for n in models.names())


@pytest.mark.parametrize("kind", KINDS)
def test_a_plugin_file_origin_carries_its_sha256(kind, tmp_path):
    path = write_plugin(tmp_path, kind, "test-origin", "Thing", "my_plugin.py")
    plugins.load(str(path))
    origin = registries.registry_of(kind).origin("test-origin")
    assert origin == {"module": "my_plugin.py", "sha256": sha256(path), "distribution": None}
    assert json.loads(json.dumps(origin)) == origin
    origin["sha256"] = "changed"  # a copy: the registry's record stays as it was
    assert registries.registry_of(kind).origin("test-origin")["sha256"] == sha256(path)


def test_model_origin_is_the_same_from_another_folder_and_changes_with_the_file(tmp_path):
    """The origin names the file, not where it lies (a cell digest must not depend on the folder), and its sha256."""
    first = write_plugin(tmp_path / "here", "model", "test-origin", "Thing", "my_model.py")
    info = plugins.load(str(first))
    here = models.origin_of("test-origin")
    assert here == {"module": "my_model.py", "sha256": sha256(first), "distribution": None}
    models.MODELS.remove("test-origin")
    del sys.modules[info.module]
    moved = write_plugin(tmp_path / "there", "model", "test-origin", "Thing", "my_model.py")
    plugins.load(str(moved))
    assert models.origin_of("test-origin") == here
    models.MODELS.remove("test-origin")
    edited = write_plugin(tmp_path / "edited", "model", "test-origin", "Thing", "my_model.py")
    edited.write_text(edited.read_text() + "\n# edited\n")
    plugins.load(str(edited))
    assert models.origin_of("test-origin")["sha256"] == sha256(edited) != here["sha256"]


def test_an_entry_point_origin_carries_its_distribution(tmp_path, monkeypatch):
    site = tmp_path / "site"
    package = site / "fakepkg_origin"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "det.py").write_text(plugin_source("detector", "test-ep", "score"))
    info = site / "fakepkg_origin-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakepkg-origin\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text("[robust_gen_bench.datasets]\nfake = fakepkg_origin.det\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    monkeypatch.setattr(plugins, "_entry_points_loaded", False)
    plugins.load_entry_points()
    assert detectors.origin_of("test-ep") == {
        "module": "fakepkg_origin.det", "sha256": sha256(package / "det.py"), "distribution": "fakepkg-origin==1.2",
    }  # fmt: skip


# ---- the model registry sits above bench.models.base ---------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_base_does_not_import_the_model_registry():
    base = _imports(REPO / "bench" / "models" / "base.py")
    assert not base & {"bench.registry", "bench.models.registry"}, base
    assert "bench.models.base" in _imports(REPO / "bench" / "models" / "registry.py")
    assert not (REPO / "bench" / "registration.py").exists()


def test_base_loads_a_saved_model_through_the_registry(tmp_path):
    import torch

    from bench.models.base import FitConfig, GenerativeModel

    model = models.get("replay").build("smoke", 8)
    model.fit(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.zeros(4, dtype=torch.bool), FitConfig())
    model.save(tmp_path / "m.pt")
    assert type(GenerativeModel.load(tmp_path / "m.pt")) is models.get("replay").cls
