#!/usr/bin/env bash
# RVQ-VAE vs VQ-VAE at the paper's 64 px and batch 10, trained longer than a 2-core CPU allows, on a CUDA device.
# Question (issue 8): does self-recognition / generation improve with 64 px, batch 10 and more epochs?
# The prior is the paper profile's (15 layers, dim 64) for 30 epochs; data counts are the cpu profile's.
# Usage: benchmarks/gpu_rvq_probe.sh FACEMASK_ROOT OUT_DIR EPOCHS [RATIOS]
set -u
root=$1 out=$2 epochs=$3 ratios=${4:-30}
export PYTHONUNBUFFERED=1
bench() { python3 -c 'from bench.cli import entry; entry()' "$@"; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
start=$(date +%s)
bench run --profile cpu --models rvqvae,vqvae --datasets facemask --ratios "$ratios" --data-root-facemask "$root" \
  --out "$out" --jobs 1 --set data.size=64 --set run.device=cuda --set run.checkpoint_every_s=60 \
  --set models.rvqvae.batch_size=10 --set models.vqvae.batch_size=10 \
  --set models.rvqvae.epochs="$epochs" --set models.vqvae.epochs="$epochs" \
  $(for m in rvqvae vqvae; do for kv in prior_layers=15 prior_dim=64 prior_head_hidden=512 prior_lr=0.0003 \
      prior_batch_size=128 prior_epochs=30; do printf -- '--set models.%s.%s ' $m $kv; done; done)
echo "grid rc=$? wall_s=$(( $(date +%s) - start ))"
python3 benchmarks/selfrecognition.py --out "$out" --markdown "$out/selfrecognition.md"
