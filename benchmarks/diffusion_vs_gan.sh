#!/usr/bin/env bash
# The default diffusion model against the default GAN on mnist5k at equal training time, 3 seeds
# each (members of one run), final FID-digits on 4,000 EMA samples vs the 1,000 test digits;
# then the diffusion run's FID-digits and sampling time against the number of network
# evaluations (NFE), per sampler (1,000 samples per row). About 30 minutes on 2 CPU cores.
#
#   bash benchmarks/diffusion_vs_gan.sh [WORKDIR]      # default runs/diffusion_vs_gan
#
# Results of the run recorded in docs/diffusion.md: benchmarks/results/diffusion_vs_gan_mnist5k/.
set -euo pipefail
W=${1:-runs/diffusion_vs_gan}
python train_gan.py --workdir "$W/gan" --config.seeds=3 --config.eval_every=0
python train_diffusion.py --workdir "$W/diffusion" --config.seeds=3
gen report "$W"
python benchmarks/nfe.py --workdir "$W/diffusion" --member 0 --num 1000 --out "$W/nfe.md"
