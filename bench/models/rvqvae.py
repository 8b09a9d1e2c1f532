"""Robust VQ-VAE (Lai, Zou, Lerman): two codebooks, self-recognition by reconstruction error, confidence matching.

Reading guide (paper §3.2 and Appendix A, Algorithm 1):

* ``codebook_std``        eq. 5  s = per-dimension std of a codebook. **Detached**: s is the "confidence" weight of
                                 the distance, a statistic of the codebook, not a quantity to optimise. With
                                 gradients through s, eq. 7's latent terms could be lowered by shrinking the spread of
                                 a codebook (d_W is proportional to s), i.e. by collapsing it, and the commitment term
                                 would send gradients into the codebook, which sg[z_vq] forbids.
* ``weighted_distance``   eq. 3  d_W(z; mu, s) = sqrt(sum_i s_i^2 (z_i - mu_i)^2).
* ``confidence_match``    eq. 4 / eq. 6  nearest code under d_W with s = std of that codebook.
* ``flag_outliers``       §3.2.1 / Alg. 1 line 7  top eta of the previous epoch's errors ||x - x~||_2 use C_out:
                                 ``selection = "batch"`` (Algorithm 1: top ceil(eta |I|) within each batch, default)
                                 or ``"global"`` (§3.2.1: top eta of all errors of the previous epoch).
* ``rvq_loss``            eq. 7  ``loss = "paper"``: ||x - D(z_enc + sg[z_vq - z_enc])||_2
                                 + d_W(sg[z_enc]; z_vq, s) + beta d_W(sg[z_vq]; z_enc, s), all norms non-squared,
                                 per image (image and latent grid each read as one vector), averaged over the batch.
                                 ``loss = "stable"``: the same terms with the two d_W terms squared (see
                                 docs/rvqvae-notes.md for why eq. 7 as written diverges and why this is the fix).
* ``latent_indices``      eq. 8  after training, indices come from C_in only.

``train_is_outlier`` is used only to report how the flagged set matches the truth (precision, recall, AUC).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from bench import fields
from bench.detectors import flag_metrics, register_detector, roc_auc, top_fraction
from bench.models.base import to_float
from bench.models.registry import register_model
from bench.models.vq_common import (
    VQ_PROFILES,
    ImageSource,
    VQCommonConfig,
    VQModelBase,
    epoch_batches,
    flatten_latents,
    init_codebook,
    squared_distances,
    straight_through,
    unflatten_latents,
    usage_stats,
)

SELECTIONS = ("batch", "global")
LOSSES = ("paper", "stable")
ERROR_VIA = ("assigned", "inlier")


@dataclass
class RVQVAEConfig(VQCommonConfig):
    """RVQ-VAE (paper §4.2): K_in = 512, K_out = 256, eta = 20 %, plus the shared settings."""

    inlier_codebook_size: int = 512
    outlier_codebook_size: int = 256
    eta: float = 0.2
    selection: str = "batch"  # "batch" (Algorithm 1) | "global" (§3.2.1)
    loss: str = "stable"  # "paper" (eq. 7 literally) | "stable" (squared d_W terms); see docs/rvqvae-notes.md
    # Which reconstruction Err(tau) measures for an image sent to C_out: "assigned" (Alg. 1 line 17 literally: the
    # C_out reconstruction it was trained with) | "inlier" (its C_in-only reconstruction, eq. 8's view: how well the
    # inlier model explains it). See docs/rvqvae-notes.md.
    error_via: str = "assigned"

    def __post_init__(self) -> None:
        super().__post_init__()
        fields.require_positive(self, ("inlier_codebook_size", "outlier_codebook_size"))
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.error_via not in ERROR_VIA:
            raise ValueError(f"error_via must be one of {ERROR_VIA}, got {self.error_via!r}")
        if not 0.0 < self.eta < 0.5:
            raise ValueError(f"eta must be in (0, 0.5) (paper §3.2.1), got {self.eta}")


def codebook_std(codebook: torch.Tensor) -> torch.Tensor:
    """Per-dimension std over the codes of a codebook (K x D -> D), detached (see module docstring)."""
    return codebook.detach().std(dim=0)  # eq. 5


def weighted_distance(z: torch.Tensor, mu: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """d_W over the last dimension (broadcasting); norm's gradient at 0 is 0, not NaN."""
    return torch.linalg.vector_norm(s * (z - mu), dim=-1)  # eq. 3


def confidence_match(z_flat: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of the nearest code under d_W with s = std(codebook), and that s."""
    s = codebook_std(codebook)  # eq. 5
    d2 = squared_distances(z_flat.detach() * s, codebook.detach() * s)  # d_W^2 for all pairs, eq. 3
    return d2.argmin(dim=1), s  # eq. 4 (C_in) / eq. 6 (C_out)


def flag_outliers(prev_errors: torch.Tensor, eta: float) -> torch.Tensor:
    """Alg. 1 line 7: the top ceil(eta |I|) previous-epoch errors of a batch (or of the whole set) use C_out."""
    return top_fraction(prev_errors, eta)


def rvq_loss(
    x: torch.Tensor,
    x_rec: torch.Tensor,
    z_enc: torch.Tensor,
    z_vq: torch.Tensor,
    s: torch.Tensor,
    beta: float,
    variant: str,
) -> dict[str, torch.Tensor]:
    """Eq. 7 per image, averaged over the batch. ``s`` is per latent position (B x h x w x D or broadcastable)."""
    b = x.shape[0]
    err = torch.linalg.vector_norm((x - x_rec).reshape(b, -1), dim=1)  # eq. 7 term 1: ||x - x~||_2 (not squared)
    ze = z_enc.permute(0, 2, 3, 1).reshape(b, -1)
    zq = z_vq.permute(0, 2, 3, 1).reshape(b, -1)
    sw = s.reshape(b, -1)
    codebook = weighted_distance(ze.detach(), zq, sw)  # eq. 7 term 2: d_W(sg[z_enc]; z_vq, std(C(x)))
    commitment = weighted_distance(zq.detach(), ze, sw)  # eq. 7 term 3: d_W(sg[z_vq]; z_enc, std(C(x)))
    if variant == "stable":  # the named fix: squared latent terms give a restoring force that grows with distance
        codebook, commitment = codebook.pow(2), commitment.pow(2)
    loss = (err + codebook + beta * commitment).mean()  # eq. 7, E over x
    return {
        "loss": loss,
        "recon": err.mean(),
        "codebook": codebook.mean(),
        "commitment": commitment.mean(),
        "errors": err.detach(),
    }


@register_model(
    "rvqvae",
    config=RVQVAEConfig,
    profiles=VQ_PROFILES,
    title="RVQ-VAE",
    paper_name="RVQ-VAE",
    paper_rank=0,
)
class RVQVAE(VQModelBase):
    """Robust VQ-VAE: inlier/outlier codebooks, top-eta self-recognition, weighted-distance confidence matching."""

    def _build_quantiser(self) -> None:
        self.codebook_in = init_codebook(self.cfg.inlier_codebook_size, self.cfg.code_dim)
        self.codebook_out = init_codebook(self.cfg.outlier_codebook_size, self.cfg.code_dim)
        self.errors = torch.full((0,), float("nan"))  # Err(tau - 1) per training image, filled during training

    def _codebooks(self) -> dict[str, torch.nn.Parameter]:
        return {"in": self.codebook_in, "out": self.codebook_out}

    def _generation_codebook(self) -> torch.Tensor:
        return self.codebook_in.detach()

    def _extra_train_state(self) -> dict[str, Any]:
        return {"errors": self.errors.detach().to("cpu", copy=True)}

    def _load_extra_train_state(self, state: dict[str, Any]) -> None:
        if "errors" in state:
            self.errors = state["errors"].to(self.device, copy=True)

    def _move_extra_state(self, device: torch.device) -> None:
        self.errors = self.errors.to(device)

    def quantise(self, z_enc: torch.Tensor, use_outlier_codebook: torch.Tensor) -> dict[str, torch.Tensor]:
        """Confidence matching per image: C_out for flagged images (eq. 6), C_in for the others (eq. 4)."""
        b, d, g, _ = z_enc.shape
        flat = flatten_latents(z_enc)
        k_in, s_in = confidence_match(flat, self.codebook_in)  # eq. 4
        k_out, s_out = confidence_match(flat, self.codebook_out)  # eq. 6
        per_pos = use_outlier_codebook.repeat_interleave(g * g).unsqueeze(1)  # image flag -> its latent positions
        z_vq = torch.where(per_pos, self.codebook_out[k_out], self.codebook_in[k_in])
        s = torch.where(per_pos, s_out.expand(len(flat), d), s_in.expand(len(flat), d))
        return {"z_vq": unflatten_latents(z_vq, b, g), "s": s, "k_in": k_in, "k_out": k_out, "per_pos": per_pos[:, 0]}

    def losses(self, x: torch.Tensor, use_outlier_codebook: torch.Tensor) -> dict[str, torch.Tensor]:
        z_enc = self.encoder(x, self.precision)  # fp32 (bf16 convolutions inside in "bf16")
        q = self.quantise(z_enc, use_outlier_codebook)  # fp32 confidence matching, never under autocast
        x_rec = self.decoder(
            straight_through(z_enc, q["z_vq"]), self.precision
        )  # x~ = D(z_enc + sg[z_vq - z_enc]), fp32
        out = rvq_loss(x, x_rec, z_enc, q["z_vq"], q["s"], self.cfg.beta, self.cfg.loss)
        out.update(q)
        out["z_enc"] = z_enc
        return out

    def _train_epoch(self, data: ImageSource, epoch: int, seed: int, labels: torch.Tensor) -> dict[str, Any]:
        n, eta, dev = len(data), self.cfg.eta, self.device
        if self.errors.numel() != n:
            self.errors = torch.full((n,), float("nan"), device=dev)
        prev = self.errors.clone()  # Err(tau - 1)
        first_epoch = epoch == 0
        global_flags = flag_outliers(prev, eta) if not first_epoch and self.cfg.selection == "global" else None
        # Running statistics stay on the model's device: no host sync per step.
        flagged_epoch = torch.zeros(n, dtype=torch.bool, device=dev)
        sums = torch.zeros(4, device=dev)
        counts_in = torch.zeros(self.cfg.inlier_codebook_size, dtype=torch.long, device=dev)
        counts_out = torch.zeros(self.cfg.outlier_codebook_size, dtype=torch.long, device=dev)
        z_norm = torch.zeros((), device=dev)
        for b in epoch_batches(n, self.cfg.batch_size, seed, epoch):
            b = b.to(dev)
            if first_epoch:
                use_out = torch.zeros(len(b), dtype=torch.bool, device=dev)  # Alg. 1 line 3-5: everything uses C_in
            elif global_flags is not None:
                use_out = global_flags[b]  # §3.2.1: top eta of all previous errors
            else:
                use_out = flag_outliers(prev[b], eta)  # Alg. 1 line 7: top ceil(eta |I|) of the batch
            x = data.batch(b)
            out = self.losses(x, use_out)
            self._opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            self._opt.step()
            errors = out["errors"]  # Alg. 1 line 17: Err(tau) = ||x - x~||_2
            if self.cfg.error_via == "inlier" and not first_epoch:
                errors = self._inlier_errors(x, out["k_in"], errors, use_out)
            self.errors[b] = errors
            flagged_epoch[b] = use_out
            sums += torch.stack([out[k].detach() for k in ("loss", "recon", "codebook", "commitment")]) * len(b)
            pos = out["per_pos"]
            counts_in += torch.bincount(out["k_in"][~pos], minlength=self.cfg.inlier_codebook_size)
            counts_out += torch.bincount(out["k_out"][pos], minlength=self.cfg.outlier_codebook_size)
            z_norm += out["z_enc"].detach().norm(dim=1).mean() * len(b)
        row: dict[str, Any] = dict(zip(("loss", "recon", "codebook", "commitment"), (sums / n).tolist()))
        stats_in, stats_out = usage_stats(counts_in), usage_stats(counts_out)
        row.update(
            perplexity_in=stats_in["perplexity"],
            dead_codes_in=stats_in["dead_codes"],
            perplexity_out=stats_out["perplexity"],
            dead_codes_out=stats_out["dead_codes"],
            z_enc_norm=float(z_norm / n),
            codebook_in_std=float(codebook_std(self.codebook_in).mean()),
        )
        # Reporting only: how this epoch's flagged set (chosen from Err(tau-1)) matches the true labels, and how well
        # this epoch's errors Err(tau) (the next epoch's flagging score) rank the true outliers.
        self.flagged = None if first_epoch else flagged_epoch.cpu()
        row["flag"] = None if first_epoch else flag_metrics(labels, eta, scores=prev.cpu(), flagged=self.flagged)
        auc = roc_auc(self.errors.cpu(), labels)
        row["error_auc"] = None if math.isnan(auc) else auc
        return row

    @torch.no_grad()
    def _inlier_errors(
        self, x: torch.Tensor, k_in: torch.Tensor, errors: torch.Tensor, flagged: torch.Tensor
    ) -> torch.Tensor:
        """``errors`` with each flagged image's error replaced by that of its C_in-only reconstruction: this step's
        eq. 4 codes, decoded by the decoder after this step's update (one extra no-grad decode per flagged image)."""
        z_in = unflatten_latents(self.codebook_in[k_in], x.shape[0], self.grid)[flagged]
        x_in = self.decoder(z_in, self.precision)
        out = errors.clone()
        out[flagged] = torch.linalg.vector_norm((x[flagged] - x_in).reshape(len(x_in), -1), dim=1)
        return out

    def _final_history(self, history: dict[str, Any], labels: torch.Tensor) -> None:
        if not history["epochs"]:
            return
        last = history["epochs"][-1]
        # The set the model actually sent to C_out in its last epoch; after a single epoch (nothing flagged yet), the
        # set it would flag next (top eta of the last errors).
        final = last["flag"] or flag_metrics(labels, self.cfg.eta, scores=self.errors.cpu())
        history["flag_precision"] = final["precision"]
        history["flag_recall"] = final["recall"]
        history["flag_auc"] = last["error_auc"]
        history["flag_chance_precision"] = final["chance_precision"]
        history["flag_recall_ceiling"] = final["recall_ceiling"]
        history["flag_precision_ceiling"] = final["precision_ceiling"]

    def _set_aside(self) -> dict[str, Any]:
        """Its last epoch's C_out assignment (after a single epoch: the top eta of the last errors, what it would send
        next), and the last errors Err(tau) as outlier scores."""
        errors = self.errors.detach().cpu()
        if errors.numel() == 0:
            return {}
        flagged = getattr(self, "flagged", None)
        rule = "its last epoch's C_out assignment (Algorithm 1)"
        if flagged is None or flagged.numel() != errors.numel():
            flagged, rule = flag_outliers(errors, self.cfg.eta), "top eta of the last epoch's errors"
        return {"set_aside": flagged, "outlier_scores": errors, "set_aside_rule": rule}

    def inlier_only_reconstruction(self, images: torch.Tensor) -> torch.Tensor:
        return self.reconstruct_inlier_only(images)

    def _prior_indices(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        k, _ = confidence_match(flatten_latents(self.encoder(x)), self.codebook_in)  # eq. 8: C_in only
        return k.reshape(b, self.grid, self.grid)

    @torch.inference_mode()
    def reconstruct_inlier_only(self, images: torch.Tensor) -> torch.Tensor:
        """Encode, quantise with C_in only (eq. 8), decode: does the inlier codebook refuse outliers?"""
        self.encoder.eval()
        self.decoder.eval()
        return self.decode_indices(self._prior_indices(to_float(images.to(self.device))))

    @torch.inference_mode()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Reconstruction through C_in for every image (same as reconstruct_inlier_only; kept for symmetry)."""
        return self.reconstruct_inlier_only(images)


@dataclass(frozen=True)
class RVQDetectorParams:
    """RVQ-VAE's autoencoder trained as a detector (no prior): the cpu profile's settings by default."""

    epochs: int = 8
    batch_size: int = 32
    eta: float = 0.2
    selection: str = "batch"
    lr: float = 3e-4

    def __post_init__(self) -> None:  # the same checks as the model's own settings
        RVQVAEConfig(epochs=self.epochs, batch_size=self.batch_size, eta=self.eta, selection=self.selection, lr=self.lr)


@register_detector(
    "rvqvae", params=RVQDetectorParams, cheap=False,
    description="RVQ-VAE's own flagged set: its last-epoch C_out assignment first, then its last reconstruction errors",
)  # fmt: skip
def rvqvae_detector(images: torch.Tensor, params: RVQDetectorParams, seed: int) -> torch.Tensor:
    """Train RVQ-VAE's autoencoder on the (contaminated, unlabelled) images; score = 1 for the images its last epoch
    sent to C_out plus their normalised last error (so dropping a fraction eta drops exactly its C_out assignment, and
    other fractions continue by error)."""
    from bench.models.base import FitConfig

    cfg = RVQVAEConfig(epochs=params.epochs, batch_size=params.batch_size, eta=params.eta, selection=params.selection,
                       lr=params.lr, prior_epochs=0)  # fmt: skip
    model = RVQVAE(cfg, images.shape[-1])
    result = model.fit(images, torch.zeros(len(images), dtype=torch.bool), FitConfig(seed=seed))  # no labels
    errors = result.outlier_scores.double()
    span = float(errors.max() - errors.min()) or 1.0
    return result.set_aside.double() + (errors - errors.min()) / span * 0.999
