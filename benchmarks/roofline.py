"""Roofline map of a FaceMask ``cpu`` cell: FLOPs per image, achieved GFLOP/s and where the rest of the time goes.

    PYTHONPATH=$PWD python benchmarks/roofline.py                       # 1 and 2 threads, every model, ~15 min
    PYTHONPATH=$PWD python benchmarks/roofline.py --threads 1 --models gan --rounds 3
    PYTHONPATH=$PWD python benchmarks/roofline.py --markdown /tmp/roofline.md   # also write the tables
    PYTHONPATH=$PWD python benchmarks/roofline.py --threads 1 --precision fp32,bf16 --no-eval   # fp32 vs bf16

For each thread count it measures the machine's fp32 peak (a 2048^3 matmul and a large 3x3 convolution), then for
each model the workloads of one cell, as the models run them (the ``cpu`` profile's networks and batch sizes, 32 px,
random images: speed does not depend on the pixels):

- ``train``  one training iteration (GAN family: G + D step incl. R1 / gradient penalty; Robust OT: the mean over 20
             iterations around its weight-net warm-up, i.e. half of them with W steps like the cell; VQ models: one
             autoencoder step at batch 32, timed over an epoch of 20 steps);
- ``prior``  one PixelCNN training step (batch 64, 8x8 latent grid) (VQ models);
- ``sample`` 500 generated images (VQ models: PixelCNN sampling + decoding);
- ``eval``   evaluation of 3,000 samples (classifier features, % inliers, FD, KID, precision/recall).

Columns: images/s (training images, or generated / evaluated ones); MFLOP per image (forward + backward, double
backward included, counted per aten op with torch's FLOP formulas); achieved GFLOP/s = FLOPs / median wall time;
``kernel peak`` = the same FLOPs over the time the FLOP-counted kernels (convolutions, matmuls) take when each is
replayed alone at its exact shapes, strides and thread count: the most this model could reach with today's kernels
and no time outside them; then achieved / kernel peak and achieved / big-matmul peak; and the split of the wall time
into those kernels, every other aten op replayed alone (element-wise, pooling, copies, optimiser maths: memory-bound)
and the rest (Python, module calls, autograd engine: "overhead"). ``s/cell`` projects the workload's time in one
cell (mean over the 7 ratios 0-30 %: 3,579 training images; sampling and evaluation of 3,000).

Times are this thread's CPU time at 1 thread (so time descheduled by other processes on a shared machine does not
count) and wall time at 2 threads. Run it on a quiet machine if you can; it prints the 1-minute load average next to
each table.

``--precision fp32,bf16`` (``FitConfig.precision``, bench/precision.py): the peaks are measured in both precisions
(the big matmul in bf16, and fwd+bwd of 3x3 convolutions at the models' shapes, fp32 and under bf16 autocast); each
workload runs in both, timed in alternating rounds, each row against its own precision's matmul peak, and the last
line gives the fp32 / bf16 ratio of seconds per image. bf16 ``train`` / ``prior`` rows are the models' own bf16
training steps (what they keep in fp32 included); a bf16 ``sample`` row wraps ``sample()`` in bf16 autocast, which the
models do not do (they sample in fp32): it measures what sampling in bf16 would gain.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _ops import alternate, clock, replay, top_ops, trace  # noqa: E402

SIZE = 32
RATIOS = (0.0, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30)
INLIERS = 3000
CELL_SAMPLES = 3000
MODELS = ("gan", "sdnrgan3", "robustot", "vqvae", "rvqvae")
PRECISIONS = ("fp32", "bf16")
# fwd+bwd 3x3 convolutions (batch 64, channels_last) at the sizes the models' networks run: (channels, pixels).
CONV_SHAPES = ((64, 16), (128, 8), (32, 32))


def train_sizes() -> list[int]:
    """Training-set size of each FaceMask cpu cell (3,000 inliers + round(r / (1 - r) * 3,000) outliers)."""
    return [INLIERS + round(r / (1 - r) * INLIERS) for r in RATIOS]


def mean_train_size() -> float:
    return statistics.mean(train_sizes())


def random_images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, SIZE, SIZE), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def mod(pkg: str, name: str):
    """``bench.<name>`` of the package ``pkg`` (``bench``, or an exported earlier version under another name)."""
    return importlib.import_module(f"{pkg}.{name}")


def model_registry(pkg: str):
    """The model registry of that version: ``bench.models.registry``, or ``bench.registry`` before it moved there."""
    try:
        return mod(pkg, "models.registry")
    except ModuleNotFoundError:
        return mod(pkg, "registry")


def adam_of(pkg: str) -> Callable:
    """The VQ models' optimiser as ``fit`` builds it in that version of the code."""
    try:
        return mod(pkg, "models.optim").adam
    except ImportError:  # code before the shared fused Adam
        return getattr(mod(pkg, "models.vq_common"), "make_adam", lambda params, lr: torch.optim.Adam(params, lr=lr))


@dataclass
class Workload:
    model: str
    name: str
    images_per_call: int  # training images per call (train/prior), or generated / evaluated images
    calls_per_cell: float  # calls one cell makes (mean over the 7 ratios)
    setup: Callable[[], Callable[[], object]]  # builds the state, returns the timed callable


# ------------------------------------------------------------------------------------------------ workloads


def set_precision(model, precision: str) -> None:
    """Train ``model`` in ``precision`` as ``fit`` would (its ``precision`` attribute); older code knows only fp32."""
    if precision != "fp32" and not hasattr(type(model), "precision"):
        raise SystemExit(f"this version of {type(model).__name__} has no precision setting: it trains in fp32 only")
    if hasattr(type(model), "precision"):
        model.precision = precision


def gan_train(name: str, pkg: str = "bench", overrides: dict | None = None, precision: str = "fp32") -> Workload:
    gc = mod(pkg, "models.gan_common")
    spec = model_registry(pkg).get(name)
    cfg = spec.build("cpu", SIZE, overrides).cfg
    robust = name == "robustot"
    real_batch = cfg.batch_size if robust else cfg.d_batch_size
    window = 20 if robust else 4  # iterations per call

    def setup() -> Callable[[], object]:
        model = spec.build("cpu", SIZE, overrides)
        rng = torch.Generator().manual_seed(0)
        data = gc.RealBatches(random_images(round(mean_train_size())), rng, clamp=model.clamp_real)
        model.prepare_nets("cpu")
        model.optimizers = model.build_optimizers()
        set_precision(model, precision)
        # Robust OT: the window straddles the weight-net warm-up, so half its iterations include W steps, as a cell.
        start = (cfg.weight_warmup - window // 2) if robust else 1
        for it in range(start - 4, start):
            model.train_step(it, data, rng)

        def run() -> None:
            for it in range(start, start + window):
                model.train_step(it, data, rng)

        return run

    return Workload(name, "train", real_batch * window, cfg.iterations / window, setup)


def vq_train(name: str, pkg: str = "bench", overrides: dict | None = None, precision: str = "fp32") -> Workload:
    ImageSource = mod(pkg, "models.vq_common").ImageSource
    spec = model_registry(pkg).get(name)
    cfg = spec.build("cpu", SIZE, overrides).cfg
    steps = 20
    n = steps * cfg.batch_size
    per_cell = statistics.mean(cfg.epochs * math.ceil(m / cfg.batch_size) for m in train_sizes()) / steps

    def setup() -> Callable[[], object]:
        model = spec.build("cpu", SIZE, overrides)
        data = ImageSource(random_images(n))
        model.data_variance = data.variance()
        set_precision(model, precision)
        model._opt = adam_of(pkg)(model.autoencoder_parameters(), model.cfg.lr)
        labels = torch.zeros(n, dtype=torch.bool)
        model.encoder.train()
        model.decoder.train()
        model._train_epoch(data, 0, 0, labels)  # RVQ-VAE's first epoch sends nothing to C_out; later ones do
        epoch = [1]

        def run() -> None:
            model._train_epoch(data, epoch[0], 0, labels)
            epoch[0] += 1

        return run

    return Workload(name, "train", n, per_cell, setup)


def vq_prior(name: str, pkg: str = "bench", overrides: dict | None = None, precision: str = "fp32") -> Workload:
    spec = model_registry(pkg).get(name)
    cfg = spec.build("cpu", SIZE, overrides).cfg
    per_cell = statistics.mean(cfg.prior_epochs * math.ceil(m / cfg.prior_batch_size) for m in train_sizes())

    def setup() -> Callable[[], object]:
        model = spec.build("cpu", SIZE, overrides)
        prior = model.prior.train()
        opt = adam_of(pkg)(prior.parameters(), cfg.prior_lr)
        idx = torch.randint(
            0,
            prior.cfg.num_codes,
            (cfg.prior_batch_size, SIZE // 4, SIZE // 4),
            generator=torch.Generator().manual_seed(0),
        )

        def run() -> None:
            loss = prior.loss(idx) if precision == "fp32" else prior.loss(idx, precision)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return run

    return Workload(name, "prior", cfg.prior_batch_size, per_cell, setup)


def sampling(
    name: str, pkg: str = "bench", overrides: dict | None = None, precision: str = "fp32", n: int = 500
) -> Workload:
    """``n`` samples; ``precision`` "bf16" wraps ``sample()`` in bf16 autocast (the models themselves sample in fp32:
    this measures what sampling in bf16 would gain)."""
    spec = model_registry(pkg).get(name)

    def setup() -> Callable[[], object]:
        model = spec.build("cpu", SIZE, overrides)
        if hasattr(model, "prepare_nets"):
            model.prepare_nets("cpu")
            model.nets.eval()
        if precision == "fp32":
            return lambda: model.sample(n, seed=0)

        def run() -> object:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return model.sample(n, seed=0)

        return run

    return Workload(name, "sample", n, CELL_SAMPLES / n, setup)


def evaluation(pkg: str = "bench") -> Workload:
    """``evaluate_samples`` on 3,000 samples with the cpu profile's settings (classifier trained once in setup)."""
    evaluator = mod(pkg, "evaluator")
    config = mod(pkg, "config")
    cfg = (config._cpu() if hasattr(config, "_cpu") else config.default_profile("cpu")).eval  # older code: _cpu()

    def setup() -> Callable[[], object]:
        cache = Path(tempfile.mkdtemp(prefix="roofline-eval-"))
        clf_images = random_images(1800, seed=1)
        clf_labels = torch.arange(1800) % 2 == 1
        reference = random_images(1400, seed=2)
        samples = random_images(CELL_SAMPLES, seed=3)
        kwargs = dict(
            clf_train_images=clf_images,
            clf_train_is_outlier=clf_labels,
            reference_images=reference,
            cfg=cfg,
            seed=0,
            cache_dir=cache,
        )
        evaluator.evaluate_samples(samples, **kwargs)  # trains and caches the classifier, reference features
        return lambda: evaluator.evaluate_samples(samples, **kwargs)

    return Workload("(all)", "eval", CELL_SAMPLES, 1.0, setup)


def workload(name: str, pkg: str = "bench", overrides: dict | None = None, precision: str = "fp32") -> Workload:
    """By name: ``MODEL.train``, ``MODEL.prior`` (VQ models), ``MODEL.sample`` or ``eval``; ``overrides``: the model's
    config fields to change from the cpu profile; ``precision``: "fp32" or "bf16" (evaluation: fp32 only)."""
    if name == "eval":
        if precision != "fp32":
            raise SystemExit("evaluation runs in fp32 only")
        return evaluation(pkg)
    model, _, kind = name.partition(".")
    makers = {
        "train": gan_train if model in ("gan", "sdnrgan3", "robustot") else vq_train,
        "prior": vq_prior,
        "sample": sampling,
    }
    return makers[kind](model, pkg, overrides, precision)


def workload_names(models: list[str]) -> list[str]:
    names: list[str] = []
    for m in models:
        names += (
            [f"{m}.train", f"{m}.sample"]
            if m in ("gan", "sdnrgan3", "robustot")
            else [f"{m}.train", f"{m}.prior", f"{m}.sample"]
        )
    return names + ["eval"]


# ------------------------------------------------------------------------------------------------ measuring


def median_seconds(fn: Callable[[], object], rounds: int, warmup: int = 1) -> float:
    """Median seconds per call: CPU time of this thread with one torch thread, wall time with more (``clock``)."""
    now = clock(torch.get_num_threads())
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(rounds):
        t0 = now()
        fn()
        ts.append(now() - t0)
    return statistics.median(ts)


def matmul_peak(n: int = 2048, rounds: int = 5, precision: str = "fp32") -> float:
    """GFLOP/s of an n^3 matmul, in fp32 or with both operands in bf16."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    return 2 * n**3 / median_seconds(lambda: a @ b, rounds, warmup=2) / 1e9


def autocast_for(precision: str):
    """bf16 autocast on the CPU for "bf16", nothing for "fp32" (what bench.precision.autocast does)."""
    if precision == "fp32":
        return torch.autocast("cpu", enabled=False)
    return torch.autocast("cpu", dtype=torch.bfloat16)


def conv_peak(rounds: int = 5, precision: str = "fp32") -> float:
    """A large 3x3 convolution (batch 64, 128 -> 128 channels, 32x32, channels_last): oneDNN's best case here."""
    x = torch.randn(64, 128, 32, 32).contiguous(memory_format=torch.channels_last)
    w = torch.randn(128, 128, 3, 3).contiguous(memory_format=torch.channels_last)
    flops = 2 * 64 * 128 * 128 * 9 * 32 * 32

    def run() -> None:
        with torch.no_grad(), autocast_for(precision):
            torch.nn.functional.conv2d(x, w, padding=1)

    return flops / median_seconds(run, rounds, warmup=2) / 1e9


def conv_fwd_bwd_peak(channels: int, pixels: int, batch: int = 64, rounds: int = 5, precision: str = "fp32") -> float:
    """GFLOP/s of a 3x3 convolution's forward + backward (input and weight gradients: 3x the forward FLOPs), fp32
    or under bf16 autocast (the weight stays fp32, as a model's), channels_last."""
    x = torch.randn(batch, channels, pixels, pixels).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1).to(memory_format=torch.channels_last)
    flops = 3 * 2 * batch * channels * channels * 9 * pixels * pixels

    def run() -> None:
        with autocast_for(precision):
            out = conv(x)
        out.float().sum().backward()

    return flops / median_seconds(run, rounds, warmup=2) / 1e9


def peaks(precisions: tuple[str, ...], rounds: int = 5) -> dict[str, dict[str, float]]:
    """{precision: {"matmul": GFLOP/s, "conv": big-conv forward GFLOP/s, "conv CxP": fwd+bwd GFLOP/s, ...}}."""
    out: dict[str, dict[str, float]] = {}
    for prec in precisions:
        row = {"matmul": matmul_peak(rounds=rounds, precision=prec), "conv": conv_peak(rounds, prec)}
        for ch, px in CONV_SHAPES:
            row[f"conv {ch}ch {px}px"] = conv_fwd_bwd_peak(ch, px, rounds=rounds, precision=prec)
        out[prec] = row
    return out


def peaks_line(p: dict[str, dict[str, float]]) -> str:
    """One line per precision: "fp32: big matmul (2048^3) 39.0, big conv ... GFLOP/s"."""
    lines = []
    for prec, row in p.items():
        convs = ", ".join(f"{k[5:]} {v:.1f}" for k, v in row.items() if k.startswith("conv "))
        lines.append(
            f"{prec}: big matmul (2048^3) {row['matmul']:.1f}, big conv (64x128x32x32, 3x3, fwd) "
            f"{row['conv']:.1f}, 3x3 conv fwd+bwd batch 64 ({convs}) GFLOP/s"
        )
    if "fp32" in p and "bf16" in p:
        ratios = ", ".join(f"{k} {p['bf16'][k] / p['fp32'][k]:.2f}x" for k in p["fp32"])
        lines.append(f"bf16 / fp32 peak: {ratios}")
    return "\n".join(lines)


@dataclass
class Row:
    model: str
    workload: str
    img_s: float
    mflop_img: float
    gflop_s: float
    kernel_peak: float
    vs_kernel: float
    vs_matmul: float
    kernels_pct: float
    other_pct: float
    overhead_pct: float
    s_cell: float
    ops_per_img: float


def make_row(w: Workload, t, wall: float, rep, peak: float, top: int = 0, label: str = "") -> Row:
    """Table row of workload ``w`` from its trace ``t``, median wall (or CPU) seconds per call and op replay."""
    flops = t.flops
    kernel_peak = flops / rep.compute_s / 1e9 if rep.compute_s > 0 else float("nan")
    gflops = flops / wall / 1e9
    overhead = wall - rep.compute_s - rep.other_s
    if top:
        per_call = (
            f"{len(t.records)} ops per call, {wall * 1e3:.1f} ms per call; top ops (ms per call, replayed alone):"
        )
        print(f"  {w.model} {w.name}{label}: {per_call}")
        for name, calls, secs, gf in top_ops(rep, top):
            rate = "" if gf != gf else f", {gf:.1f} GFLOP/s"
            print(f"    {name:45s} x{calls:<5d} {secs * 1e3:8.2f} ms{rate}")
    return Row(
        model=w.model,
        workload=w.name + label,
        img_s=w.images_per_call / wall,
        mflop_img=flops / w.images_per_call / 1e6,
        gflop_s=gflops,
        kernel_peak=kernel_peak,
        vs_kernel=gflops / kernel_peak,
        vs_matmul=gflops / peak,
        kernels_pct=100 * rep.compute_s / wall,
        other_pct=100 * rep.other_s / wall,
        overhead_pct=100 * overhead / wall,
        s_cell=wall * w.calls_per_cell,
        ops_per_img=len(t.records) / w.images_per_call,
    )


def measure(w: Workload, rounds: int, peak: float, top: int = 0) -> Row:
    torch.manual_seed(0)
    fn = w.setup()
    t = trace(fn)
    wall = median_seconds(fn, rounds)
    return make_row(w, t, wall, replay(t.records), peak, top)


def measure_pair(
    wb: Workload,
    wn: Workload,
    rounds: int,
    peak: float,
    top: int = 0,
    labels: tuple[str, str] = ("before", "after"),
    peak_new: float | None = None,
) -> tuple[Row, Row, float]:
    """``wb`` (earlier code, or fp32) and ``wn`` (this checkout, or bf16) side by side: timed calls alternate B N, N B,
    ...; returns both rows and the median of the per-round ratios of seconds per image, B / N. ``peak_new``: the
    matmul peak ``wn``'s row is set against (default ``peak``)."""
    torch.manual_seed(0)
    fb = wb.setup()
    torch.manual_seed(0)
    fn = wn.setup()
    tb, tn = trace(fb), trace(fn)
    fb()
    fn()
    timed = alternate(fb, fn, rounds)
    sb, sn = timed.first, timed.second
    ratio = statistics.median((b / wb.images_per_call) / (n / wn.images_per_call) for b, n in zip(sb, sn))
    rb = make_row(wb, tb, statistics.median(sb), replay(tb.records), peak, top, f" ({labels[0]})")
    rn = make_row(
        wn,
        tn,
        statistics.median(sn),
        replay(tn.records),
        peak if peak_new is None else peak_new,
        top,
        f" ({labels[1]})",
    )
    return rb, rn, ratio


HEADER = (
    "| model | workload | img/s | MFLOP/img | GFLOP/s | kernel peak | vs kernel | vs matmul | kernels % | "
    "other ops % | overhead % | s/cell |"
)


def fmt(r: Row) -> str:
    return (
        f"| {r.model} | {r.workload} | {r.img_s:,.1f} | {r.mflop_img:,.1f} | {r.gflop_s:.1f} | "
        f"{r.kernel_peak:.1f} | {r.vs_kernel:.2f} | {r.vs_matmul:.2f} | {r.kernels_pct:.0f} | {r.other_pct:.0f} | "
        f"{r.overhead_pct:.0f} | {r.s_cell:,.0f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--workloads", help="only these (e.g. gan.train,vqvae.prior,eval), instead of --models")
    ap.add_argument("--rounds", type=int, default=5, help="timed calls per workload (median)")
    ap.add_argument("--no-eval", action="store_true", help="skip the evaluation workload")
    ap.add_argument("--base", help="also measure this earlier commit, interleaved with this checkout (before/after)")
    ap.add_argument(
        "--precision",
        default="fp32",
        help="fp32, bf16, or fp32,bf16: both side by side (peaks in both, fp32/bf16 ratio per workload)",
    )
    ap.add_argument("--markdown", type=Path, help="append the tables to this file")
    ap.add_argument("--top", type=int, default=0, help="also print each workload's N most expensive ops")
    args = ap.parse_args()
    precisions = tuple(args.precision.split(","))
    if not precisions or any(p not in PRECISIONS for p in precisions) or len(set(precisions)) != len(precisions):
        ap.error(f"--precision: one or both of {', '.join(PRECISIONS)}, got {args.precision!r}")
    paired = len(precisions) == 2
    if paired and args.base:
        ap.error("--base and --precision fp32,bf16 each time two versions side by side: give one of them")
    names = args.workloads.split(",") if args.workloads else workload_names(args.models.split(","))
    if args.no_eval:
        names = [n for n in names if n != "eval"]
    if args.base:
        from _base import BASE_PKG, describe, export, short

        export(args.base)
        print(f"before = {args.base} ({short(args.base)}), after = this checkout ({describe()})", flush=True)
    lines: list[str] = []
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        peak = peaks(precisions)
        mm = {prec: row["matmul"] for prec, row in peak.items()}
        timer = "CPU time of the thread" if threads == 1 else "wall time"
        head = (
            f"threads={threads} ({timer}); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n"
            f"{peaks_line(peak)}"
        )
        print(head, flush=True)
        table = [head, "", HEADER, "|" + "---|" * 12]
        cells: dict[str, list[float]] = {}
        ratios: list[str] = []
        for name in names:
            if args.base:
                wb, wn = workload(name, BASE_PKG), workload(name)
                rb, rn, ratio = measure_pair(wb, wn, args.rounds, mm["fp32"], args.top)
                rows = [rb, rn]
                ratios.append(f"{name} {ratio:.2f}x")
            elif paired and name != "eval":
                wb, wn = workload(name, precision="fp32"), workload(name, precision="bf16")
                rb, rn, ratio = measure_pair(wb, wn, args.rounds, mm["fp32"], args.top, ("fp32", "bf16"), mm["bf16"])
                rows = [rb, rn]
                ratios.append(f"{name} {ratio:.2f}x")
            else:
                prec = "fp32" if name == "eval" else precisions[0]
                rows = [measure(workload(name, precision=prec), args.rounds, mm[prec], args.top)]
            for i, r in enumerate(rows):
                cells.setdefault(r.model, [0.0] * len(rows))[i] += r.s_cell
                table.append(fmt(r))
                print(table[-1], flush=True)
        order = "; before -> after" if args.base else "; fp32 -> bf16" if paired else ""
        per_cell = "; ".join(f"{m} " + " -> ".join(f"{s:,.0f} s" for s in v) for m, v in cells.items() if m != "(all)")
        tail = f"\nProjected cell (train + prior + sampling{order}): {per_cell}"
        if "(all)" in cells:
            tail += "; evaluation " + " -> ".join(f"{s:,.1f} s" for s in cells["(all)"])
        if ratios:
            what = "Before/after" if args.base else "fp32/bf16"
            tail += f"\n{what}, seconds per image (median of per-round ratios, rounds alternating): " + ", ".join(
                ratios
            )
        tail += f"; load average at end {os.getloadavg()[0]:.1f}\n"
        print(tail, flush=True)
        lines += table + [tail]
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
