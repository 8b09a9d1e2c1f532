"""VQ-VAE (van den Oord et al. 2017) as the RVQ-VAE paper uses it (§3.1, §4.2), with a gated PixelCNN prior.

Loss (eq. 2), in the Sonnet example's normalisation that the paper ported: the reconstruction term is the mean
squared error divided by the training-set variance, the two latent terms are means over latent elements.
The codebook gets gradients only from the codebook term; the encoder from reconstruction (straight-through) and
commitment; the decoder from reconstruction.

Optional remedy against codebook collapse, off unless ``codebook_remedy = "dead_code_reset"``: after each epoch,
codes that no latent used during the epoch are moved onto random encoder outputs of the epoch's last batches (the
Jukebox/VideoGPT "restart" scheme). The ``paper`` profile keeps it off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from bench import fields
from bench.models.registry import register_model
from bench.models.vq_common import (
    VQ_PROFILES,
    ImageSource,
    VQCommonConfig,
    VQModelBase,
    epoch_batches,
    flatten_latents,
    init_codebook,
    reset_dead_codes,
    squared_distances,
    straight_through,
    unflatten_latents,
    usage_stats,
)

REMEDIES = ("none", "dead_code_reset")


@dataclass
class VQVAEConfig(VQCommonConfig):
    """VQ-VAE: one codebook of K = 512 (paper §4.2) plus the shared settings."""

    codebook_size: int = 512
    codebook_remedy: str = "none"  # "none" | "dead_code_reset"

    def __post_init__(self) -> None:
        super().__post_init__()
        fields.require_positive(self, ("codebook_size",))
        if self.codebook_remedy not in REMEDIES:
            raise ValueError(f"codebook_remedy must be one of {REMEDIES}, got {self.codebook_remedy!r}")


@register_model(
    "vqvae",
    config=VQVAEConfig,
    profiles=VQ_PROFILES,
    title="VQ-VAE",
    paper_name="VQ-VAE",
    paper_rank=1,
)
class VQVAE(VQModelBase):
    """VQ-VAE with a gated PixelCNN prior (the paper's non-robust baseline)."""

    def _build_quantiser(self) -> None:
        self.codebook = init_codebook(self.cfg.codebook_size, self.cfg.code_dim)
        self._recent: list[torch.Tensor] = []

    def _codebooks(self) -> dict[str, torch.nn.Parameter]:
        return {"main": self.codebook}

    def _generation_codebook(self) -> torch.Tensor:
        return self.codebook.detach()

    def quantise(self, z_enc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest code per latent vector (eq. 1): (z_vq B x D x h x w, indices B x h x w)."""
        b, _, g, _ = z_enc.shape
        flat = flatten_latents(z_enc)
        k = squared_distances(flat.detach(), self.codebook.detach()).argmin(1)  # eq. 1
        return unflatten_latents(self.codebook[k], b, g), k.reshape(b, g, g)

    def losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z_enc = self.encoder(x, self.precision)  # fp32 (bf16 convolutions inside in "bf16")
        z_vq, k = self.quantise(z_enc)  # fp32 distances, never under autocast
        x_rec = self.decoder(straight_through(z_enc, z_vq), self.precision)  # fp32 output; the losses below in fp32
        recon = F.mse_loss(x_rec, x) / self.data_variance  # eq. 2, first term (Sonnet normalisation)
        codebook = F.mse_loss(z_vq, z_enc.detach())  # eq. 2, ||sg[z_enc] - z_vq||^2
        commitment = F.mse_loss(z_enc, z_vq.detach())  # eq. 2, ||z_enc - sg[z_vq]||^2
        loss = recon + codebook + self.cfg.beta * commitment  # eq. 2
        return {
            "loss": loss,
            "recon": recon,
            "codebook": codebook,
            "commitment": commitment,
            "indices": k,
            "z_enc": z_enc,
        }

    def _train_epoch(self, data: ImageSource, epoch: int, seed: int, labels: torch.Tensor) -> dict[str, Any]:
        dev = self.device  # running statistics stay on the model's device: no host sync per step
        sums = torch.zeros(4, device=dev)
        counts = torch.zeros(self.cfg.codebook_size, dtype=torch.long, device=dev)
        recent: list[torch.Tensor] = []
        for b in epoch_batches(len(data), self.cfg.batch_size, seed, epoch):
            out = self.losses(data.batch(b))
            self._opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            self._opt.step()
            sums += torch.stack([out[k].detach() for k in ("loss", "recon", "codebook", "commitment")]) * len(b)
            counts += torch.bincount(out["indices"].flatten(), minlength=self.cfg.codebook_size)
            if self.cfg.codebook_remedy == "dead_code_reset":
                recent = (recent + [flatten_latents(out["z_enc"].detach())])[-8:]
        means = (sums / len(data)).tolist()
        row: dict[str, Any] = dict(zip(("loss", "recon", "codebook", "commitment"), means))
        row.update(usage_stats(counts))
        if self.cfg.codebook_remedy == "dead_code_reset":
            gen = torch.Generator().manual_seed(seed * 7919 + epoch)
            row["codes_reset"] = reset_dead_codes(self.codebook, counts, torch.cat(recent), gen)
        return row

    def _prior_indices(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantise(self.encoder(x))[1]

    @torch.inference_mode()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        from bench.models.base import to_float, to_uint8

        self.encoder.eval()
        self.decoder.eval()
        z_vq, _ = self.quantise(self.encoder(to_float(images.to(self.device))))
        return to_uint8(self.decoder(z_vq)).cpu()
