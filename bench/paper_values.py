"""The paper's published numbers (Lai, Zou, Lerman; Tables 1-5), for side-by-side comparison in reports.

Transcribed from ../shared/spec/rvq-vae-paper.md, Appendix C and D. Keys: our registry names.
"""

from __future__ import annotations

PAPER_MODELS = {"rvqvae": "RVQ-VAE", "vqvae": "VQ-VAE", "robustot": "robust OT", "gan": "GAN", "sdnrgan3": "NR-GAN"}

_R5 = (5, 10, 15, 20, 25, 30)
_R0 = (0, 5, 10, 15, 20, 25, 30)

# Tables 1-2: percentage of generated inliers, training outlier ratios 5..30 %.
PCT_INLIERS = {
    "facemask": {
        "rvqvae": dict(zip(_R5, (98.42, 96.55, 94.67, 93.18, 92.18, 91.81))),
        "vqvae": dict(zip(_R5, (48.68, 14.08, 2.34, 0.98, 0.62, 0.22))),
        "robustot": dict(zip(_R5, (94.44, 89.55, 84.53, 79.80, 74.41, 69.39))),
        "gan": dict(zip(_R5, (95.73, 89.83, 84.60, 78.51, 73.75, 69.11))),
        "sdnrgan3": dict(zip(_R5, (94.29, 89.64, 86.24, 79.78, 75.52, 71.29))),
    },
    "roomcrop": {
        "rvqvae": dict(zip(_R5, (97.56, 95.72, 91.98, 86.64, 80.96, 77.44))),
        "vqvae": dict(zip(_R5, (66.71, 53.85, 39.75, 25.93, 22.15, 16.29))),
        "robustot": dict(zip(_R5, (96.19, 92.94, 88.95, 82.85, 72.71, 67.80))),
        "gan": dict(zip(_R5, (92.78, 88.91, 84.63, 82.00, 74.23, 70.15))),
        "sdnrgan3": dict(zip(_R5, (97.43, 88.91, 82.69, 78.65, 72.64, 70.36))),
    },
}

# Tables 3-4: FID against the inlier class, training outlier ratios 0..30 %.
FID = {
    "facemask": {
        "rvqvae": dict(zip(_R0, (42.723, 43.367, 44.680, 42.496, 42.340, 44.552, 42.537))),
        "vqvae": dict(zip(_R0, (42.659, 100.767, 146.244, 234.322, 245.413, 241.596, 242.206))),
        "robustot": dict(zip(_R0, (30.420, 32.670, 35.593, 36.400, 40.971, 51.398, 58.344))),
        "gan": dict(zip(_R0, (5.681, 10.578, 15.675, 23.871, 37.029, 40.558, 48.488))),
        "sdnrgan3": dict(zip(_R0, (6.381, 13.650, 17.358, 21.060, 32.201, 36.971, 45.143))),
    },
    "roomcrop": {
        "rvqvae": dict(zip(_R0, (92.987, 92.831, 93.574, 94.891, 95.026, 94.578, 97.213))),
        "vqvae": dict(zip(_R0, (92.816, 104.214, 107.996, 111.145, 113.437, 116.230, 117.203))),
        "robustot": dict(zip(_R0, (24.062, 31.880, 38.935, 49.554, 54.691, 85.075, 108.884))),
        "gan": dict(zip(_R0, (23.301, 30.595, 33.507, 42.098, 50.377, 54.553, 57.381))),
        "sdnrgan3": dict(zip(_R0, (25.137, 30.184, 38.976, 41.260, 43.630, 46.796, 53.351))),
    },
}

# Table 5: F1 of the binary classifier at test outlier ratios 0..30 %.
F1 = {
    "facemask": dict(zip(_R0, (1.000, 1.000, 1.000, 0.995, 0.996, 0.984, 0.979))),
    "roomcrop": dict(zip(_R0, (0.997, 0.989, 0.968, 0.970, 0.966, 0.959, 0.934))),
}
