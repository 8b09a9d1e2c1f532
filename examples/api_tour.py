"""A notebook-style tour of the Python API (`bench.api`): run a small grid, score samples made outside the harness,
read the results back as a DataFrame and draw Fig. 4 from it.

    python examples/api_tour.py                      # demo profile, results in results/api-tour
    python examples/api_tour.py --profile smoke --out /tmp/tour   # seconds (CI runs this)
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from bench import api  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--profile", default="demo")
parser.add_argument("--out", default="results/api-tour")
args = parser.parse_args()
out = Path(args.out)

# 1. Two models at two ratios on the embedded synthetic faces (cells already finished are reused).
df = api.run(models="gan,vqvae", datasets="facemask", ratios=[0, 30], profile=args.profile, out=out)
print(df[["model", "ratio", "pct_inliers", "robustness", "recall"]].to_string(index=False))

# 2. Samples made by "another code base": here the training images of the 30 % split, saved as PNG files. A model
#    that memorised its training data would produce exactly these (the `replay` reference generator).
split = api.build_split("facemask", 30, profile=args.profile, out=out)
folder = out / "external-samples"
folder.mkdir(parents=True, exist_ok=True)
for i, image in enumerate(split.train_images[:120]):
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{i:04d}.png")
row = api.score(folder, "facemask", profile=args.profile, ratio=30, out=out, append_to=out, model_name="memoriser")
print(
    f"memoriser: {row['pct_inliers']:.1f} % inliers (the training data has {100 - 30} %), robustness "
    f"{row['robustness']:.2f}"
)

# 3. Everything back as one DataFrame (rows joined with their variant and provenance), and Fig. 4 from it.
results = api.load_results(out)
fig, ax = plt.subplots(figsize=(5, 3.5))
for label, part in results.groupby("title"):
    means = part.groupby("ratio").pct_inliers.mean()
    ax.plot(means.index, means.values, marker="o", label=label)
ax.set_xlabel("training outlier ratio r (%)")
ax.set_ylabel("% generated inliers")
ax.legend()
fig.tight_layout()
fig.savefig(out / "fig4-from-api.png", dpi=100)
print(f"wrote {out / 'fig4-from-api.png'}")
