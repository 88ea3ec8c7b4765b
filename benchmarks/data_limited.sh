#!/usr/bin/env bash
# Data-limited GAN training on 10% of mnist5k's train split (400 digits): the default DCGAN
# (batch 64, as when it was recorded) plain, with DiffAugment and with ADA, 3 seeds each (members of one run), same steps; then
# the seed-averaged table. About 26 minutes on 2 CPU cores.
#
#   bash benchmarks/data_limited.sh [WORKDIR [STEPS]]    # default runs/data_limited 1000
#
# Results of the run recorded in the README: benchmarks/results/data_limited_mnist5k/.
set -euo pipefail
W=${1:-runs/data_limited}
STEPS=${2:-1000}  # bash benchmarks/data_limited.sh runs/dl10k 10000: long enough for D to overfit
common=(--config.data.split='train[:10%]' --config.seeds=3 --config.num_steps=$STEPS
        --config.batch_size=64 --config.eval_every=0
        --config.eval.num_samples=2000 --config.sample_every=$STEPS
        --config.checkpoint_every=$STEPS)
python train_gan.py --workdir "$W/plain" "${common[@]}"
python train_gan.py --workdir "$W/diffaugment" "${common[@]}" \
    --config.augment.diffaugment=color,translation,cutout
# ADA: ada_kimg 20 lets p move within a 64k-image run (StyleGAN2-ADA's 500 is for ~25M images).
# One step per call: XLA:CPU compiles 10 unrolled steps x 3 members of ADA's geometric
# pipeline for over 10 minutes.
python train_gan.py --workdir "$W/ada" "${common[@]}" --config.augment.ada=bgc \
    --config.augment.ada_kimg=20 --config.steps_per_call=1
gen report "$W"
