"""Test double as a plug-in file (``--plugin tests/plugins/step_model.py``): "trains" in ``steps`` steps of ``step_s``
seconds, saves ``cfg.checkpoint`` after each step when due (``--set run.checkpoint_every_s=0.001``: every step) and
resumes from it; its history records the step it resumed from. With ``marker`` set, every fit start and step appends
one line ``<pid> fit|step <cell folder> <step>`` to that file (the tests count fits per cell and find who runs what)."""

import os
import time
from dataclasses import dataclass

from bench.plugin import FitResult, GenerativeModel, register_model


@dataclass
class StepCfg:
    steps: int = 5
    step_s: float = 0.0
    marker: str = ""
    noise: float = 10.0


@register_model("test_steps", config=StepCfg, profiles={"paper": {}, "cpu": "paper", "demo": "paper", "smoke": "paper"})
class StepModel(GenerativeModel):
    """Test double: the training mean plus Gaussian noise, reached in checkpointed steps."""

    def _mark(self, event: str, folder: str, step: int) -> None:
        if self.cfg.marker:
            with open(self.cfg.marker, "a", encoding="utf-8") as fh:
                fh.write(f"{os.getpid()} {event} {folder} {step}\n")

    def fit(self, train_images, train_is_outlier, cfg, progress=None):
        import torch

        checkpoint = cfg.checkpoint
        state = checkpoint.load() if checkpoint is not None else None
        start = int(state["step"]) if state else 0
        folder = str(checkpoint.path.parent) if checkpoint is not None else "-"
        self._mark("fit", folder, start)
        for step in range(start, self.cfg.steps):
            time.sleep(self.cfg.step_s)
            self._mark("step", folder, step + 1)
            if checkpoint is not None and checkpoint.due():
                checkpoint.save({"step": torch.tensor(step + 1)})
        self.mean = train_images.float().mean(0)
        return FitResult(history={"resumed_from": start, "steps": self.cfg.steps}, images_seen=len(train_images))

    def sample(self, n, seed):
        import torch

        g = torch.Generator().manual_seed(seed)
        x = self.mean + self.cfg.noise * torch.randn((n, *self.mean.shape), generator=g)
        return x.round().clamp(0, 255).to(torch.uint8)

    def state_dict(self):
        return {"mean": self.mean}

    def load_state_dict(self, state):
        self.mean = state["mean"]
