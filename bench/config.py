"""Profiles (``smoke``, ``demo``, ``cpu``, ``paper``) as dataclasses, with TOML and ``--set key=value`` overrides.

A profile fixes the data protocol (resolution, and per dataset its counts and settings, which each dataset registers
for every profile), the evaluation budget and run settings. Per-model hyper-parameters live with each model (its
config dataclass and per-profile defaults in the model registry); a profile may override them under
``models.<name>.<field>``. Every override is type- and range-checked before any work starts.
"""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import fields
from bench.errors import BenchError
from bench.registries import PROFILE_NAMES

DEFAULT_PROFILE = "cpu"
PROFILE_PURPOSE = {
    "smoke": "CI plumbing check: tiny data and models, the numbers carry no meaning",
    "demo": "the phenomenon in minutes on the embedded synthetic data: synthetic data and tiny models",
    "cpu": "a laptop: 32 px, a few thousand images, one dataset's grid in about an hour on 2 cores",
    "paper": "the paper's protocol (64 px, 400 epochs, batch 10): a GPU",
}
BACKENDS = ("loky", "dask")
# run.* settings that are comma lists on the command line (--models a,b): a TOML list or a number is accepted too.
_LIST_TEXT = ("datasets", "ratios", "seeds", "models")


@dataclass
class DataConfig:
    """Resolution, and one settings object per registered dataset (``data.<dataset>.<field>``)."""

    size: int = 64
    datasets: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        fields.require(
            self.size >= 8 and self.size % 4 == 0,
            f"size must be a multiple of 4 and at least 8 (e.g. 16, 32, 64), got {self.size}",
        )

    def dataset(self, name: str) -> Any:
        if name not in self.datasets:
            from bench.datasets import registry

            registry.get(name)  # unknown name: the registry's message
            raise BenchError(f"dataset '{name}' was registered after this profile was loaded: load plug-ins first")
        return self.datasets[name]

    def __getattr__(self, name: str) -> Any:  # data.facemask, data.roomcrop, ... as attributes
        if name.startswith("__") or name == "datasets":
            raise AttributeError(name)
        try:
            return self.datasets[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass
class EvalConfig:
    # Generated samples per cell = number of training inliers (paper §4.3), capped here.
    max_generated: int = 100_000
    classifier_epochs: int = 20
    classifier_batch: int = 64
    classifier_lr: float = 1e-3
    # Train the classifier on degraded copies of both classes too (bench/degradations.py: blur, down-up-sampling,
    # noise, JPEG), so that sample quality cannot move a sample across its decision (bench/validity.py).
    classifier_augment: bool = True
    # The classifier's channel multiplier and convolution padding: 2 and 1 (64 / 128 channels, borders kept) pass the
    # validity check on the stand-ins where the paper's 1 and 0 do not; the paper's exact classifier is
    # --set eval.classifier_width=1 --set eval.classifier_padding=0 --set eval.classifier_augment=false
    # --set eval.classifier_lr_schedule=constant.
    classifier_width: int = 2
    classifier_padding: int = 1
    # The learning rate over training: "cosine" anneals it to zero over the last step, so the weights a run ends with
    # do not depend on where the last few noisy minibatches left them (with a constant rate, the validity check
    # passed or failed by seed); "constant" is the paper's Adam at a fixed rate.
    classifier_lr_schedule: str = "cosine"
    feature_batch: int = 100
    kid_subset_size: int = 1_000
    # Local InceptionV3 weights (torch-fidelity's pt_inception-2015-12-05 file); None = look in TORCH_HOME.
    inception_weights: str | None = None

    def __post_init__(self) -> None:
        fields.require_positive(self, ("max_generated", "classifier_epochs", "classifier_batch", "classifier_lr",
                                       "feature_batch", "classifier_width"))  # fmt: skip
        fields.require(
            self.classifier_padding in (0, 1), f"classifier_padding must be 0 or 1, got {self.classifier_padding}"
        )
        fields.require(
            self.classifier_lr_schedule in ("cosine", "constant"),
            f"classifier_lr_schedule must be 'cosine' or 'constant', got {self.classifier_lr_schedule!r}",
        )
        fields.require(self.kid_subset_size >= 2, f"kid_subset_size must be at least 2, got {self.kid_subset_size}")


@dataclass
class RunConfig:
    # 0 = all cores divided by the number of parallel jobs. More threads than free cores is catastrophic for
    # small convnets (OpenMP spin-waits: a 4 s smoke GAN fit took 54 s with 2 threads while one core was busy).
    threads: int = 0
    checkpoint_every_s: float = 300.0
    grid_samples: int = 100
    # Where models train and sample: "cpu", "cuda" or "cuda:N". Data, classifier and metrics stay on the CPU.
    device: str = "cpu"
    # Training precision, "fp32" or "bf16" (bench/precision.py): bf16 trains under bf16 autocast where the device
    # computes bf16 natively (a CPU with avx512_bf16 / amx_bf16, an Ampere+ GPU) and falls back to fp32, saying so,
    # elsewhere. Sampling and evaluation stay fp32.
    precision: str = "fp32"
    # What `bench run` runs when an option is not given on the command line: the grid's selection (--datasets,
    # --ratios, --jobs, --models, --seeds, --filter, --data-root, --backend). "" datasets = the datasets registered
    # as this profile's defaults; no data root = the dataset's embedded synthetic data. `--print-config` writes the
    # resolved selection, so that `--config` of its output plans the same cells. None of it is part of a cell's
    # identity (the data's content is, not its path).
    datasets: str = ""
    ratios: str = "0,5,...,30"
    jobs: int = 1
    models: str = "all"
    seeds: str = "0"
    filters: list[str] = field(default_factory=lambda: ["none"])
    data_roots: dict[str, str] = field(default_factory=dict)  # {dataset: folder}, e.g. {"folder": "/data/mine"}
    backend: str = "loky"

    def __post_init__(self) -> None:
        fields.require_non_negative(self, ("threads", "grid_samples"))
        fields.require_positive(self, ("checkpoint_every_s", "jobs"))
        fields.require_choice(self, "precision", ("fp32", "bf16"))
        fields.require(self.backend in BACKENDS, f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        example = 'e.g. filters = ["none", "pca:0.3"]'
        fields.require(all(isinstance(f, str) for f in self.filters), f"filters must be strings, {example}")
        for name, root in self.data_roots.items():
            fields.require(isinstance(root, str) and bool(root.strip()),
                           f'data_roots.{name} must be a folder, e.g. {name} = "/data/mine", got {root!r}')  # fmt: skip


@dataclass
class Profile:
    name: str = "paper"
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    run: RunConfig = field(default_factory=RunConfig)
    # Per-model hyper-parameter overrides: {"rvqvae": {"eta": 0.1}, ...}; validated by the model registry.
    models: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def meaningless(self) -> bool:
        """True for the CI plumbing profile: its numbers must be labelled as carrying no meaning."""
        return self.name == "smoke"

    def to_dict(self) -> dict[str, Any]:
        data = {"size": self.data.size, **{n: dataclasses.asdict(s) for n, s in sorted(self.data.datasets.items())}}
        return {"name": self.name, "data": data, "eval": dataclasses.asdict(self.eval),
                "run": dataclasses.asdict(self.run), "models": copy.deepcopy(self.models)}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Profile:
        """Inverse of ``to_dict`` (a stored cell's settings, or a profile sent to a worker process)."""
        from bench.datasets import registry

        try:
            data = dict(d["data"])
            size = data.pop("size")
            datasets = {}
            for name, values in data.items():
                spec = registry.get(name)
                datasets[name] = fields.build(spec.settings_cls, dict(values), f"data.{name}")
            return cls(
                name=d["name"], data=fields.build(DataConfig, {"size": size, "datasets": datasets}, "data"),
                eval=fields.build(EvalConfig, dict(d["eval"]), "eval"), run=fields.build(RunConfig, dict(d["run"]), "run"),
                models=copy.deepcopy(dict(d.get("models", {}))),
            )  # fmt: skip
        except (KeyError, TypeError, AttributeError) as e:
            raise BenchError(
                f"stored settings are incomplete or from an older version ({type(e).__name__}: {e})"
            ) from None


def _profile_base(name: str) -> Profile:
    """The profile's own fields; dataset settings are added from the dataset registry."""
    if name == "paper":  # §4.2, §4.3: 64x64, FaceMask 10k inliers, RoomCrop 30k/30k, 400 epochs, batch 10
        return Profile(name="paper")
    if name == "cpu":  # 32x32 and a few thousand inliers (counts sized for the stand-ins in ../shared/data)
        return Profile(
            name="cpu", data=DataConfig(size=32),
            eval=EvalConfig(max_generated=3_000, classifier_epochs=120, kid_subset_size=500),
            # bf16 (on CPUs with native bf16; fp32 elsewhere): the FaceMask grid (facemask12k, seed 0, 49 cells) took
            # 33 min 25 s instead of 56-68 min, and GAN, SD-NR-GAN-III, VQ-VAE and RVQ-VAE stayed within one seed's
            # noise of three fp32 seeds on every metric; Robust OT did not and trains in fp32 (bench/models/robustot.py)
            run=RunConfig(checkpoint_every_s=120.0, precision="bf16"),
        )  # fmt: skip
    if name == "demo":  # the README's main job, a few minutes on 2 cores; tiny models (docs/demo-profile.md)
        return Profile(
            name="demo", data=DataConfig(size=16),
            eval=EvalConfig(max_generated=600, classifier_epochs=20, classifier_batch=32, feature_batch=100,
                            kid_subset_size=100),
            # bf16 as in cpu: the main job took 83 s instead of 104 s on a 2-core AVX512-BF16 VM
            run=RunConfig(threads=1, checkpoint_every_s=120.0, ratios="0,10,20,30", jobs=2, precision="bf16"),
        )  # fmt: skip
    if name == "smoke":  # CI: 16x16, ~150 training images, one or two epochs; seconds per cell
        return Profile(
            name="smoke", data=DataConfig(size=16),
            eval=EvalConfig(max_generated=120, classifier_epochs=40, classifier_batch=32, feature_batch=60,
                            kid_subset_size=50),
            run=RunConfig(threads=1, checkpoint_every_s=30.0, grid_samples=36),  # tiny nets gain nothing from 2 threads
        )  # fmt: skip
    raise BenchError(f"unknown profile '{name}': choose one of {', '.join(PROFILE_NAMES)}")


# ------------------------------------------------------------------------------------------------ image counts

# The counts every dataset has (``data.<dataset>.<key>``), in the order a split draws them, and the smallest value
# a suggested count is scaled down to (the sizes the test suite's tiny runs use: a split, a classifier and the
# metrics still work; a count the user set lower is kept).
COUNT_KEYS = ("inliers", "classifier_train_per_class", "classifier_test_per_class", "reference")
MIN_COUNTS = {"inliers": 16, "classifier_train_per_class": 8, "classifier_test_per_class": 4, "reference": 8}


def image_needs(counts: dict[str, int], ratio: float) -> tuple[int, int]:
    """(inlier images, outlier images) a split with these counts draws at ``ratio`` percent."""
    from bench.datasets import n_outliers_for

    held = counts["classifier_train_per_class"] + counts["classifier_test_per_class"]
    return sum(counts[k] for k in COUNT_KEYS), held + n_outliers_for(ratio, counts["inliers"])


def fitting_counts(
    settings: Any, ratio: float, have_inliers: int, have_outliers: int
) -> tuple[dict[str, int], float] | None:
    """Counts that fit pools of ``have_inliers`` / ``have_outliers`` images at ``ratio``: each of ``settings``'
    counts scaled by one factor (the largest that fits, in 1 % steps), rounded down and kept at least its
    ``MIN_COUNTS``; with the factor. None when even the smallest counts do not fit."""
    current = {k: int(getattr(settings, k)) for k in COUNT_KEYS}
    smallest = {k: min(v, MIN_COUNTS[k]) for k, v in current.items()}

    def fits(c: dict[str, int]) -> bool:
        need_in, need_out = image_needs(c, ratio)
        return need_in <= have_inliers and need_out <= have_outliers

    need_in, need_out = image_needs(current, ratio)
    factor = min(1.0, have_inliers / need_in, have_outliers / max(1, need_out))
    while True:
        scaled = {k: max(smallest[k], int(v * factor)) for k, v in current.items()}
        if fits(scaled):
            return scaled, factor
        if scaled == smallest:
            return None
        factor *= 0.99


def default_profile(name: str) -> Profile:
    """Profile ``name`` with every registered dataset's defaults and no overrides."""
    from bench.datasets import registry

    profile = _profile_base(name)
    profile.data.datasets = {n: registry.get(n).settings_for(name) for n in registry.names()}
    return profile


def parse_value(text: str) -> Any:
    """A ``--set`` value: a TOML literal (``3``, ``0.2``, ``true``, ``"x"``) or, failing that, a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _unknown(key: str, head: str, known: list[str]) -> BenchError:
    hint = ""
    if key.startswith("data.rect"):
        hint = (
            " (a dataset's settings are data.<dataset>.<field>, its corruption's data.<dataset>.params.<name>;"
            " --print-config lists them)"
        )
    return BenchError(f"unknown setting '{key}': '{head}' is not one of: {', '.join(known)}{hint}")


def _apply(target: Any, key: str, dotted: str, value: Any) -> None:
    """Set ``dotted`` (relative path) on a dataclass or dict, checking the field exists and the type fits."""
    head, _, rest = dotted.partition(".")
    if isinstance(target, DataConfig) and head in target.datasets:
        target = target.datasets  # data.<dataset>.<field>
    if isinstance(target, Profile) and head == "models" and rest.count(".") != 1:
        raise BenchError(f"bad setting '{key}': expected models.<model>.<field>=VALUE")
    if isinstance(target, dict):  # free-form tables (model overrides, corruption params): checked by their owner
        current = target.get(head)
        if rest:
            if not (dataclasses.is_dataclass(current) or isinstance(current, dict)):
                target[head] = current = {}
            _apply(current, key, rest, value)
        elif dataclasses.is_dataclass(current) or isinstance(current, dict):
            raise BenchError(f"bad setting '{key}': name a field inside '{head}', e.g. {key}.<field>=VALUE")
        else:
            target[head] = value
        return
    names = {f.name: f for f in dataclasses.fields(target)}
    if isinstance(target, DataConfig):
        names.pop("datasets")
    if head not in names or head == "name":
        known = [n for n in names if n != "name"] + (sorted(target.datasets) if isinstance(target, DataConfig) else [])
        raise _unknown(key, head, known)
    current = getattr(target, head)
    if rest:
        if not (dataclasses.is_dataclass(current) or isinstance(current, dict)):
            raise BenchError(f"unknown setting '{key}': '{head}' has no fields")
        _apply(current, key, rest, value)
        return
    if dataclasses.is_dataclass(current) or (isinstance(current, dict) and head != "params"):
        raise BenchError(f"bad setting '{key}': name a field inside '{head}', e.g. {head}.<field>=VALUE")
    if isinstance(target, RunConfig) and head in _LIST_TEXT and not isinstance(value, str):
        value = _list_text(key, value)  # run.seeds = [0, 1] or --set run.ratios=30: the comma list "0,1" / "30"
    setattr(target, head, fields.coerce(key, current, value))


def number_text(v: float | int) -> str:
    """A ratio or seed as a comma list writes it: ``30``, ``12.5`` (exact: ``float`` of it gives ``v`` back)."""
    if isinstance(v, int):
        return str(v)
    short = f"{v:g}"
    return short if float(short) == v else repr(float(v))


def _list_text(key: str, value: Any) -> Any:
    items = value if isinstance(value, (list, tuple)) else [value]
    if all(isinstance(v, str) or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in items):
        return ",".join(v if isinstance(v, str) else number_text(v) for v in items)
    return value  # coerce names the bad value


def _flatten(prefix: str, table: dict[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in table.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            out.extend(_flatten(key, v))
        else:
            out.append((key, v))
    return out


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(f"config file not found: {path} (pass an existing TOML file to --config)") from None
    except IsADirectoryError:
        raise BenchError(f"config file {path} is a folder: pass a TOML file to --config") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise BenchError(f"config file {path} is not valid TOML: {e}") from None


def load_profile(
    name: str | None = None,
    config_file: str | Path | None = None,
    sets: list[str] | tuple[str, ...] = (),
    overrides: dict[str, Any] | None = None,
) -> Profile:
    """Profile ``name`` (or the config file's ``profile = "..."``, or the default), then the TOML file's tables, then
    each ``key=value`` in ``sets``, then ``overrides`` ({dotted key: value}; later wins). Everything is checked here,
    before any work."""
    table = read_toml(config_file) if config_file is not None else {}
    file_profile = table.pop("profile", None)
    if file_profile is not None and not isinstance(file_profile, str):
        raise BenchError(f'config file {config_file}: profile must be a string, e.g. profile = "cpu"')
    if name is not None and file_profile is not None and name != file_profile:
        raise BenchError(
            f'--profile {name} disagrees with profile = "{file_profile}" in {config_file}: drop one of the two'
        )
    name = name or file_profile or DEFAULT_PROFILE
    if name not in PROFILE_NAMES:
        raise BenchError(f"unknown profile '{name}': choose one of {', '.join(PROFILE_NAMES)}")
    profile = default_profile(name)
    for key, value in _flatten("", table):
        _apply(profile, key, key, value)
    for item in sets:
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise BenchError(f"bad --set '{item}': expected KEY=VALUE, e.g. --set data.size=32")
        _apply(profile, key, key, parse_value(raw.strip()))
    for key, value in (overrides or {}).items():
        _apply(profile, key, key, value)
    profile = validate(profile)
    return copy.deepcopy(profile)


def validate(p: Profile) -> Profile:
    """Every part rebuilt through its dataclass (types and ranges), model overrides checked by their models."""
    from bench.models import registry

    p.data = fields.build(
        DataConfig,
        {"size": p.data.size, "datasets": {n: fields.build(type(s), dataclasses.asdict(s), f"data.{n}")
                                           for n, s in p.data.datasets.items()}},
        "data",
    )  # fmt: skip
    p.eval = fields.build(EvalConfig, dataclasses.asdict(p.eval), "eval")
    p.run = fields.build(RunConfig, dataclasses.asdict(p.run), "run")
    validate_device(p.run.device)
    for model, overrides in p.models.items():
        if not isinstance(overrides, dict):
            raise BenchError(f"bad setting 'models.{model}': expected models.<model>.<field>=VALUE")
        registry.get(model).make_config(p.name, overrides)
    return p


def validate_device(device: str) -> None:
    """``run.device`` must name the CPU or a CUDA device that this machine has."""
    kind, _, index = device.partition(":")
    if kind == "cpu" and not index:
        return
    if kind != "cuda" or (index and not index.isdigit()):
        raise BenchError(f"bad run.device='{device}': choose 'cpu', 'cuda' or 'cuda:N'")
    import torch

    if not torch.cuda.is_available():
        raise BenchError(f"run.device='{device}' but torch sees no CUDA device here: use --set run.device=cpu")
    if index and int(index) >= torch.cuda.device_count():
        raise BenchError(f"run.device='{device}' but only {torch.cuda.device_count()} CUDA device(s) exist")


# ------------------------------------------------------------------------------------------------ TOML out


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise BenchError(f"cannot write {type(v).__name__} value {v!r} as TOML")


def _toml_table(lines: list[str], name: str, table: dict[str, Any]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict) and v is not None}
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    if scalars or not tables:
        lines += ["", f"[{name}]"] + [f"{k} = {_toml_value(v)}" for k, v in scalars.items()]
    for k, v in tables.items():
        _toml_table(lines, f"{name}.{k}", v)


def to_toml(profile: Profile, models: list[str], datasets: list[str]) -> str:
    """The fully resolved configuration as TOML: fed back through ``--config``, it reproduces the same cells."""
    from bench.models import registry

    d = profile.to_dict()
    lines = [f"# robust-gen-bench resolved configuration ({PROFILE_PURPOSE[profile.name]})",
             f'profile = "{profile.name}"']  # fmt: skip
    data = {"size": d["data"]["size"]}
    for name in datasets:
        s = profile.data.dataset(name)
        values = dataclasses.asdict(s)
        if hasattr(s, "corruption_params"):  # write the corruption's full parameters, not only the overrides
            values["params"] = dataclasses.asdict(s.corruption_params())
        data[name] = values
    _toml_table(lines, "data", data)
    _toml_table(lines, "eval", d["eval"])
    _toml_table(lines, "run", d["run"])
    for m in models:
        cfg = registry.get(m).make_config(profile.name, profile.models.get(m))
        _toml_table(lines, f"models.{m}", dataclasses.asdict(cfg))
    return "\n".join(lines).strip() + "\n"
