"""Self-recognition of RVQ-VAE against two trivial detectors, from a finished grid's results folder.

For each finished, unfiltered RVQ-VAE cell (``<out>/cells/<dataset>/rvqvae/r<ratio>/s<seed>/<digest>/``): the
per-epoch precision / recall / AUC of the set it sent to C_out (read from metrics.json), next to the
distance-to-mean-image and PCA-8 residual detectors computed on the very same training split (top eta flagged).
Also the "does C_in refuse outliers" measurement when present. The report's ``table_selfrecognition`` holds only
each cell's final set; this script shows every epoch.

    python benchmarks/selfrecognition.py --out results/ [--markdown docs/x.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.config import Profile
from bench.datasets import build_split
from bench.detectors import flag_metrics, trivial_detectors


def _f(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def report(out: Path) -> str:
    lines = []
    for metrics_path in sorted(out.glob("cells/*/rvqvae/*/*/*/metrics.json")):
        folder = metrics_path.parent
        if not (folder / "done.json").exists():
            continue  # unfinished cell
        cfg = json.loads((folder / "config.json").read_text())
        metrics = json.loads(metrics_path.read_text())
        cell = cfg["cell"]
        dataset, ratio, seed = cell["dataset"], float(cell["ratio"]), int(cell["seed"])
        if cfg.get("filter"):
            continue  # a filtered cell trains on the kept part of the split, not on the split these rows score
        eta = cfg["model_config"]["eta"]
        profile = Profile.from_dict(cfg["profile"])
        split = build_split(dataset, profile.data, ratio, seed, out / "cache", cfg.get("data_root"))
        labels = split.train_is_outlier
        variant = f", {cfg['variant']}" if cfg.get("variant") else ""
        lines += [f"### {dataset}, r = {ratio:g} %, seed {seed}{variant} (eta = {eta:g}, "
                  f"{split.n_inliers} inliers + {split.n_outliers} outliers, {split.size} px)", "",
                  "| detector | precision | recall | AUC |", "|---|---|---|---|"]  # fmt: skip
        for name, scores in trivial_detectors(split.train_images):
            m = flag_metrics(labels, eta, scores=scores)
            lines.append(f"| {name} | {_f(m['precision'])} | {_f(m['recall'])} | {_f(m['auc'])} |")
        for i, ep in enumerate(metrics["history"].get("epochs", [])):
            flag = ep.get("flag") or {}
            lines.append(f"| RVQ-VAE epoch {i + 1} (flagged from epoch {i} errors) | {_f(flag.get('precision'))} | "
                         f"{_f(flag.get('recall'))} | {_f(flag.get('auc'))} |")  # fmt: skip
        m0 = flag_metrics(labels, eta, scores=labels.float())
        lines += [f"| chance / ceiling | chance {_f(m0['chance_precision'])}, ceiling {_f(m0['precision_ceiling'])} | "
                  f"ceiling {_f(m0['recall_ceiling'])} | 0.50 |", ""]  # fmt: skip
        met = metrics["metrics"]
        if "outlier_recon_called_outlier_pct" in met:
            lines += [f"Does C_in refuse outliers? Training outliers encoded with C_in only (eq. 8) and decoded: "
                      f"{met['outlier_recon_called_outlier_pct']:.1f} % still classified outliers "
                      f"(originals: {met['outlier_orig_called_outlier_pct']:.1f} %). "
                      f"Generated samples classified inlier: {met['pct_inliers']:.1f} %.", ""]  # fmt: skip
    return "\n".join(lines) if lines else "(no rvqvae cells found)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="results", type=Path)
    ap.add_argument("--markdown", type=Path, default=None, help="also write the tables to this file")
    args = ap.parse_args()
    text = report(args.out)
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
