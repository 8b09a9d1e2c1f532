"""robust-gen-bench: contaminated-training-set benchmark for generative models (RVQ-VAE reference)."""

__version__ = "0.2.0"
