"""A small generative model as a plug-in: a Gaussian in the top-k principal components of the training images.

The principal directions are found by subspace iteration, which makes a short training loop that uses every part of
the plug-in contract (docs/plugins.md): settings per profile, the seed (the random starting subspace), the device,
progress, checkpoints and resume, label-free outlier scores with a set-aside rule, and save/load. It imports from
``bench.plugin`` only.
"""

from dataclasses import dataclass

import torch

from bench.plugin import FitResult, GenerativeModel, null_progress, register_model, to_float, to_uint8


@dataclass
class PCAGaussConfig:  # the defaults are the `paper` profile's values
    components: int = 32  # k principal directions
    iterations: int = 30  # subspace iterations: Q <- orth(X^T X Q)
    set_aside_mads: float = 3.0  # set aside images whose reconstruction error exceeds median + this many MADs

    def __post_init__(self):  # a bad --set value fails here, with one line, before any work
        if self.components < 1 or self.iterations < 1 or not self.set_aside_mads > 0:
            raise ValueError(f"need components >= 1, iterations >= 1 and set_aside_mads > 0, got {self}")


@register_model("pcagauss", config=PCAGaussConfig, title="PCA-Gauss (plug-in)",
                profiles={"paper": {}, "cpu": "paper", "demo": {"components": 16, "iterations": 20},
                          "smoke": {"components": 8, "iterations": 6}})  # fmt: skip
class PCAGauss(GenerativeModel):
    """Samples mean + sum_i z_i sigma_i v_i over the top-k principal directions v_i (found by subspace iteration)."""

    def fit(self, train_images, train_is_outlier, cfg, progress=null_progress):
        # train_is_outlier is never read: the harness scores what this model sets aside against it.
        x = to_float(train_images).flatten(1).to(cfg.device)  # N x D floats in [-1, 1], on the cell's device
        mean = x.mean(0)
        xc = x - mean
        k = min(self.cfg.components, len(x) - 1, x.shape[1])
        state = cfg.checkpoint.load() if cfg.checkpoint is not None else None
        if state is None:  # a fresh start: a random subspace drawn from the cell's seed
            g = torch.Generator().manual_seed(cfg.seed)
            q, _ = torch.linalg.qr(torch.randn(x.shape[1], k, generator=g).to(cfg.device))
            start, history = 0, []
        else:  # resume where an interrupted fit stopped
            q, start, history = state["basis"].to(cfg.device), state["iteration"], state["history"]
        with progress(total=self.cfg.iterations, desc="pcagauss fit") as bar:
            bar.update(start)
            for it in range(start, self.cfg.iterations):
                new, _ = torch.linalg.qr(xc.T @ (xc @ q))
                change = 1.0 - torch.linalg.svdvals(new.T @ q).min().item()  # 0 once the subspace settles
                q = new
                history.append(change)
                if cfg.checkpoint is not None and cfg.checkpoint.due():
                    cfg.checkpoint.save({"iteration": it + 1, "basis": q.cpu(), "history": history})
                bar.set_postfix(change=f"{change:.2e}")
                bar.update(1)
        scale = (xc @ q).norm(dim=0) / (len(x) - 1) ** 0.5
        # label-free outlier scores: the squared reconstruction error outside the subspace (higher = more outlying)
        scores = (xc - (xc @ q) @ q.T).pow(2).sum(1)
        median = scores.median()
        mad = (scores - median).abs().median()
        set_aside = scores > median + self.cfg.set_aside_mads * mad
        # sample() and the saved model.pt live on the CPU
        self.mean, self.basis, self.scale = mean.cpu(), q.cpu(), scale.cpu()
        return FitResult(
            history={"subspace_change": history},
            images_seen=self.cfg.iterations * len(x),
            outlier_scores=scores.cpu(),
            set_aside=set_aside.cpu(),
            set_aside_rule=f"reconstruction error > median + {self.cfg.set_aside_mads:g} MAD",
        )

    def sample(self, n, seed):
        z = torch.randn(n, len(self.scale), generator=torch.Generator().manual_seed(seed))
        x = self.mean + (z * self.scale) @ self.basis.T
        return to_uint8(x.reshape(n, 3, self.image_size, self.image_size))  # uint8 n x 3 x H x W on the CPU

    def state_dict(self):
        return {"mean": self.mean, "basis": self.basis, "scale": self.scale}

    def load_state_dict(self, state):
        self.mean, self.basis, self.scale = state["mean"], state["basis"], state["scale"]
