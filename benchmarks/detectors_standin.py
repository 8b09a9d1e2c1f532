"""Label-free outlier detectors on the two FaceMask stand-ins: what "detect, drop, then train" would train on.

For every registered built-in detector (defaults, nothing tuned per cell) and a few sensitivity variants, on the
``cpu`` profile's FaceMask split (32 px, 3,000 training inliers + round(r/(1-r) 3,000) outliers) of each stand-in,
at r = 0, 10, 20, 30 % and seeds 0, 1, 2: AUC, precision / recall when dropping the top f (f = r, the oracle
fraction, and f = 10, 20, 30, 40 %), the outlier share left in the kept set, the inliers lost, whether the dropped
inliers are a biased slice (brightness, contrast, saturation, pixel variance kept), and seconds per fit + score.
Labels are used only to judge the scores.

    python benchmarks/detectors_standin.py --data-root ../shared/data --json docs/detectors-standin.json \\
        [--markdown /tmp/tables.md] [--tables-only]
    python benchmarks/detectors_standin.py --timing 3     # seconds per fit + score, r = 30 %, seed 0

Per-cell results are appended to the JSON file as they finish; a rerun skips cells already there (delete the file
to recompute). Threads: set OMP_NUM_THREADS / --threads (the measurements in docs/detectors.md used 2).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch

from bench import detectors
from bench.config import load_profile
from bench.datasets import build_split
from bench.detectors import flag_metrics, top_fraction

STAND_INS = ("facemask12k", "facemask-synth")
RATIOS = (0, 10, 20, 30)
SEEDS = (0, 1, 2)
FRACTIONS = (0.1, 0.2, 0.3, 0.4)
# The built-ins with their defaults (the comparison), then sensitivity variants (reported as such, not chosen from).
MAIN = [("mean", {}), ("pca", {}), ("iforest", {}), ("lof", {}), ("mcd", {}), ("kurtosis", {})]
SENSITIVITY = [
    ("pca", {"k": 16}),
    ("iforest", {"k": 32}),
    ("lof", {"n_neighbors": 100}),
    ("mcd", {"k": 8}),
    ("mcd", {"k": 32}),
    ("kurtosis", {"c_steps": 50}),
]


def label(name: str, overrides: dict) -> str:
    return name + "".join(f":{k}={v}" for k, v in sorted(overrides.items()))


def image_features(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image brightness (mean luma), contrast (luma std), saturation (mean channel max - min), all in [0, 1]."""
    x = images.double() / 255.0
    luma = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    return {
        "brightness": luma.mean((1, 2)),
        "contrast": luma.flatten(1).std(1),
        "saturation": (x.amax(1) - x.amin(1)).mean((1, 2)),
    }


def drop_report(scores: torch.Tensor, labels: torch.Tensor, f: float, feats: dict, images: torch.Tensor) -> dict:
    """What dropping the top f of ``scores`` does: P/R, outlier share kept, inliers lost, bias of dropped inliers."""
    dropped = top_fraction(scores, f)
    keep = ~dropped
    m = flag_metrics(labels, f, scores=scores, flagged=dropped)
    inl = ~labels
    lost = dropped & inl
    out = {
        "f": f,
        "n_dropped": int(dropped.sum()),
        "precision": m["precision"],
        "recall": m["recall"],
        "kept_outlier_share": float(labels[keep].double().mean()),
        "inliers_lost": int(lost.sum()),
        "inliers_lost_share": float(lost.sum() / inl.sum()),
    }
    if int(lost.sum()) >= 2:
        # Standardised mean difference of the dropped inliers from all inliers, per feature.
        for k, v in feats.items():
            vi = v[inl]
            out[f"smd_{k}"] = float((v[lost].mean() - vi.mean()) / vi.std())
        # Share of dropped inliers from the 10 % darkest or 10 % brightest inliers (20 % if unbiased).
        b = feats["brightness"][inl]
        lo, hi = torch.quantile(b, 0.1), torch.quantile(b, 0.9)
        bl = feats["brightness"][lost]
        out["extreme_brightness_share"] = float(((bl <= lo) | (bl >= hi)).double().mean())
        # Pixel variance of the inliers kept, relative to all inliers (diversity a generator would still see).
        xi = images[inl].flatten(1).double() / 255.0
        xk = images[keep & inl].flatten(1).double() / 255.0
        out["inlier_variance_kept"] = float(xk.var(0).sum() / xi.var(0).sum())
    return out


def run_cell(stand_in: str, ratio: int, seed: int, data_root: Path, cache_dir: Path, variants: list) -> list[dict]:
    data = load_profile("cpu").data
    split = build_split("facemask", data, ratio, seed, cache_dir / stand_in, data_root / stand_in)
    images, labels = split.train_images, split.train_is_outlier.bool()
    feats = image_features(images)
    n, n_out = labels.numel(), int(labels.sum())
    rows = []
    for name, overrides in variants:
        params = detectors.make_params(name, overrides)
        t0 = time.perf_counter()
        scores = detectors.score(name, images, params, seed)
        seconds = time.perf_counter() - t0
        m = flag_metrics(labels, max(ratio, 1) / 100, scores=scores)
        drops = {f"{f:g}": drop_report(scores, labels, f, feats, images) for f in FRACTIONS}
        if ratio > 0:
            drops["oracle"] = drop_report(scores, labels, ratio / 100, feats, images)
        rows.append({
            "stand_in": stand_in, "ratio": ratio, "seed": seed, "detector": label(name, overrides),
            "main": (name, overrides) in MAIN, "n": n, "n_outliers": n_out, "split_hash": split.split_hash,
            "seconds": seconds, "auc": m["auc"], "drops": drops,
        })  # fmt: skip
        print(f"{stand_in} r={ratio} s={seed} {label(name, overrides):24s} {seconds:6.1f}s "
              f"AUC {m['auc'] if m['auc'] is not None else float('nan'):.3f}", flush=True)  # fmt: skip
    return rows


# ---- tables ---------------------------------------------------------------------------------------------------------


def _ms(values: list[float | None], fmt: str = "{:.2f}", scale: float = 1.0) -> str:
    vals = [v * scale for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return "-"
    mean = statistics.fmean(vals)
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{fmt.format(mean)} ± {fmt.format(sd)}"


def _get(rows: list[dict], **kw) -> list[dict]:
    return [r for r in rows if all(r[k] == v for k, v in kw.items())]


def _drop(rows: list[dict], key: str, field: str) -> list:
    return [r["drops"][key].get(field) for r in rows if key in r["drops"]]


def tables(rows: list[dict]) -> str:
    dets = [label(n, o) for n, o in MAIN]
    sens = [label(n, o) for n, o in SENSITIVITY]
    out: list[str] = []
    ratios = sorted({r["ratio"] for r in rows})
    pos = [r for r in ratios if r > 0]
    seeds = sorted({r["seed"] for r in rows})
    out.append(f"Mean ± sd over seeds {', '.join(map(str, seeds))} (stand-in results, cpu split, 32 px).\n")

    out.append("### AUC\n")
    out.append("| detector | " + " | ".join(f"{s} r={r}%" for s in STAND_INS for r in pos) + " |")
    out.append("|---|" + "---|" * (len(STAND_INS) * len(pos)))
    for d in dets + sens:
        cells = [_ms([x["auc"] for x in _get(rows, stand_in=s, ratio=r, detector=d)]) for s in STAND_INS for r in pos]
        out.append(f"| {d} | " + " | ".join(cells) + " |")
    out.append("")

    for key, title in [("oracle", "f = r (oracle fraction; precision = recall up to rounding)"),
                       ("0.1", "f = 10 %"), ("0.3", "f = 30 %")]:  # fmt: skip
        out.append(f"### Precision / recall, dropping {title}\n")
        out.append("| stand-in | detector | " + " | ".join(f"r={r}% P" + " | R" for r in pos) + " |")
        out.append("|---|---|" + "---|---|" * len(pos))
        for s in STAND_INS:
            for d in dets:
                cells = []
                for r in pos:
                    g = _get(rows, stand_in=s, ratio=r, detector=d)
                    cells += [_ms(_drop(g, key, "precision")), _ms(_drop(g, key, "recall"))]
                out.append(f"| {s} | {d} | " + " | ".join(cells) + " |")
        out.append("")

    out.append("### Outlier share left in the kept set, % (no filter: r; inliers lost in brackets, % of inliers)\n")
    for s in [s for s in STAND_INS if _get(rows, stand_in=s)]:
        out.append(f"**{s}**\n")
        out.append("| detector | f | " + " | ".join(f"r={r}%" for r in ratios) + " |")
        out.append("|---|---|" + "---|" * len(ratios))
        for key in ["oracle"] + [f"{f:g}" for f in FRACTIONS]:
            for d in dets:
                cells = []
                for r in ratios:
                    g = _get(rows, stand_in=s, ratio=r, detector=d)
                    if not g or key not in g[0]["drops"]:
                        cells.append("-")
                        continue
                    share = _ms(_drop(g, key, "kept_outlier_share"), "{:.1f}", 100)
                    lost = statistics.fmean(_drop(g, key, "inliers_lost_share")) * 100
                    cells.append(f"{share} ({lost:.0f})")
                out.append(f"| {d} | {'f = r' if key == 'oracle' else key} | " + " | ".join(cells) + " |")
        # What a perfect detector would leave (same n, same drop count).
        for key in [f"{f:g}" for f in FRACTIONS]:
            cells = []
            for r in ratios:
                g = _get(rows, stand_in=s, ratio=r, detector=dets[0])
                if not g:
                    cells.append("-")
                    continue
                nd, n, n_out = g[0]["drops"][key]["n_dropped"], g[0]["n"], g[0]["n_outliers"]
                cells.append(
                    f"{max(0, n_out - nd) / (n - nd) * 100:.1f} ({max(0, nd - n_out) / (n - n_out) * 100:.0f})"
                )
            out.append(f"| perfect detector | {key} | " + " | ".join(cells) + " |")
        out.append("")

    out.append("### r = 0 %: what dropping costs on clean data (dropped inliers vs all inliers)\n")
    out.append("SMD = standardised mean difference of the dropped images from all images (0 = unbiased slice); "
               "extreme = share of the dropped from the 10 % darkest + 10 % brightest (20 % if unbiased); "
               "variance kept = summed pixel variance of the kept set / of all images.\n")  # fmt: skip
    out.append("| stand-in | detector | f | images lost | SMD brightness | SMD contrast | SMD saturation | extreme | "
               "variance kept |")  # fmt: skip
    out.append("|---|---|---|---|---|---|---|---|---|")
    zero = {s: [(x["detector"], x["seed"], x["drops"]) for x in _get(rows, stand_in=s, ratio=0)] for s in STAND_INS}
    same = all(zero[s] == zero[STAND_INS[0]] for s in STAND_INS) and zero[STAND_INS[0]]
    for s in STAND_INS[:1] if same else STAND_INS:
        shown = "both (same images)" if same else s
        for key in ("0.1", "0.2"):
            for d in dets:
                g = _get(rows, stand_in=s, ratio=0, detector=d)
                if not g:
                    continue
                out.append(
                    f"| {shown} | {d} | {key} | {g[0]['drops'][key]['inliers_lost']} | "
                    + " | ".join(_ms(_drop(g, key, k)) for k in ("smd_brightness", "smd_contrast", "smd_saturation",
                                                                  "extreme_brightness_share", "inlier_variance_kept"))
                    + " |"
                )  # fmt: skip
    out.append("")

    out.append("### Seconds per fit + score (r = 30 %: 4,286 x 3,072 training set; median over seeds and stand-ins)\n")
    out.append("| detector | seconds (median) | min - max |")
    out.append("|---|---|---|")
    for d in dets + sens:
        t = [x["seconds"] for x in rows if x["detector"] == d and x["ratio"] == max(ratios)]
        if t:
            out.append(f"| {d} | {statistics.median(t):.1f} | {min(t):.1f} - {max(t):.1f} |")
    out.append("")

    out.append("### Sensitivity variants: precision at f = r\n")
    out.append("| detector | " + " | ".join(f"{s} r={r}%" for s in STAND_INS for r in pos) + " |")
    out.append("|---|" + "---|" * (len(STAND_INS) * len(pos)))
    for d in dets + sens:
        cells = [_ms(_drop(_get(rows, stand_in=s, ratio=r, detector=d), "oracle", "precision"))
                 for s in STAND_INS for r in pos]  # fmt: skip
        out.append(f"| {d} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def _round(x):
    if isinstance(x, float):
        return float(f"{x:.6g}")
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_round(v) for v in x]
    return x


def save(path: Path, rows: list[dict]) -> None:
    """One cell-detector row per line, floats to 6 significant digits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[\n" + ",\n".join(json.dumps(_round(r), sort_keys=True) for r in rows) + "\n]\n")


def timing(data_root: Path, cache_dir: Path, repeats: int) -> str:
    """Seconds per fit + score of every built-in on the r = 30 %, seed 0 training set of each stand-in.

    Each detector runs ``repeats`` times in a row; the minimum is the least disturbed by other work on the machine.
    """
    lines = ["| detector | " + " | ".join(f"{s} min / median s" for s in STAND_INS) + " |",
             "|---|" + "---|" * len(STAND_INS)]  # fmt: skip
    data = load_profile("cpu").data
    splits = {s: build_split("facemask", data, 30, 0, cache_dir / s, data_root / s) for s in STAND_INS}
    for name, overrides in MAIN + SENSITIVITY:
        cells = []
        for s in STAND_INS:
            params = detectors.make_params(name, overrides)
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                detectors.score(name, splits[s].train_images, params, 0)
                times.append(time.perf_counter() - t0)
            cells.append(f"{min(times):.1f} / {statistics.median(times):.1f}")
        lines.append(f"| {label(name, overrides)} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--cache-dir", type=Path, default=Path(".cache"))
    ap.add_argument("--json", type=Path, default=Path("docs/detectors-standin.json"))
    ap.add_argument("--markdown", type=Path, default=None, help="also write the tables to this file")
    ap.add_argument("--ratios", default=",".join(map(str, RATIOS)))
    ap.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    ap.add_argument("--stand-ins", default=",".join(STAND_INS))
    ap.add_argument("--no-sensitivity", action="store_true", help="only the built-ins with their defaults")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tables-only", action="store_true", help="print the tables from --json, compute nothing")
    ap.add_argument("--timing", type=int, default=0, metavar="REPEATS",
                    help="only time every detector REPEATS times on the r = 30 %%, seed 0 sets")  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.timing:
        print(f"{args.threads} thread(s); load average before: {open('/proc/loadavg').read().split()[:3]}")
        print(timing(args.data_root, args.cache_dir, args.timing))
        print(f"load average after: {open('/proc/loadavg').read().split()[:3]}")
        return
    rows: list[dict] = json.loads(args.json.read_text()) if args.json.exists() else []
    if not args.tables_only:
        variants = MAIN + ([] if args.no_sensitivity else SENSITIVITY)
        for stand_in in args.stand_ins.split(","):
            for ratio in map(int, args.ratios.split(",")):
                for seed in map(int, args.seeds.split(",")):
                    done = {x["detector"] for x in _get(rows, stand_in=stand_in, ratio=ratio, seed=seed)}
                    todo = [v for v in variants if label(*v) not in done]
                    if not todo:
                        continue
                    rows += run_cell(stand_in, ratio, seed, args.data_root, args.cache_dir, todo)
                    save(args.json, rows)
    text = tables(rows)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)


if __name__ == "__main__":
    main()
