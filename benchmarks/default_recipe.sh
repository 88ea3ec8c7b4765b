#!/usr/bin/env bash
# The ablation that chose the default GAN recipe, on the offline default (mnist5k, the default
# DCGAN): candidates that see the same 128,000 training images (so about the same wall time),
# 3 seeds each (members of one run), final FID-digits on 4,000 EMA samples vs the 1,000 test
# digits. About 40 minutes on 2 CPU cores.
#
#   bash benchmarks/default_recipe.sh [WORKDIR]      # default runs/default_recipe
#
# Results of the run recorded in the README: benchmarks/results/default_recipe_mnist5k/.
set -euo pipefail
W=${1:-runs/default_recipe}
common=(--config.seeds=3 --config.eval_every=0 --config.augment.diffaugment=
        --config.loss.lecam_weight=0)
run() {  # name batch steps
  python train_gan.py --workdir "$W/$1" "${common[@]}" --config.batch_size="$2" \
      --config.num_steps="$3" --config.sample_every="$3" --config.checkpoint_every="$3"
}
run batch64_steps2000 64 2000
run batch32_steps4000 32 4000
run batch16_steps8000 16 8000
gen report "$W"
