"""Speed of one training step of `gen`, beside PyTorch eager and torch.compile in the same run.

  pip install -e '.[bench]'     # adds torch for the reference columns
  python benchmarks/train_step.py [--rows dcgan28,dcgan64,cyclegan256_b1,cyclegan256_b8,vae]
      [--dtypes float32,bfloat16] [--seconds 10] [--steps-per-call 0] [--torch eager,compile]
      [--out benchmarks/results/train_step.json] [--markdown benchmarks/results/train_step.md]

Rows (each in every --dtypes; bfloat16 is `config.compute_dtype = "bfloat16"` for gen,
parameters and optimizer state staying float32, and `torch.autocast(device, bfloat16)` around
the forward passes and losses for PyTorch, backward and optimizer steps outside it):

  dcgan28         DCGAN (gen/configs/gan.py), 28x28x1, batch 64: one D + one G update
  dcgan64         the same at 64x64x3, batch 128 (the 64x64 DCGAN of pytorch/examples/dcgan)
  cyclegan256_b1  CycleGAN at 256x256x3, the paper's networks (gen/configs/cyclegan.py with a
  cyclegan256_b8  TFDS variant: ResNet-9 G ngf 64, 70x70 PatchGAN ndf 64, LSGAN, cycle 10,
                  identity 0.5, pool 50), batch 1 and 8 per domain: G_AB + G_BA step, then
                  D_A + D_B step
  vae             the default VAE (gen/configs/vae.py: IWAE MLP 784-200-200-50, Bernoulli
                  decoder, dynamic binarisation, ELBO, Adam(1e-3, eps 1e-4)), 28x28x1, batch 100

The gen column is the real trainer step: `step_lib.compile_steps(family, replicated)` (the
family's `train_step` scanned over `steps_per_call` steps, state donated), compiled once
ahead of time, on synthetic batches fed back every call (this measures the step, not the
input pipeline). steps_per_call is the config's (10 for GAN and VAE, 1 for CycleGAN) unless
--steps-per-call is given. The PyTorch columns are the same networks, losses and Adam
settings written in PyTorch (pytorch/examples/dcgan; junyanz/pytorch-CycleGAN-and-pix2pix
ResnetGenerator / NLayerDiscriminator / ImagePool; the IWAE MLP), run eagerly and under
torch.compile (the modules and the optimizer steps compiled; eager Adam is fused=True on
CUDA; compile is timed after 3 warm-up steps; a
failure is recorded as None with the error's first line), synchronised every
`steps_per_call` steps like the gen side. Both sides take each gradient only with respect
to the network being updated (torch: D's weights set to requires_grad=False during the G
step, as junyanz's CycleGAN does; pytorch/examples' DCGAN back-propagates G's loss into D's
weights too, and discards that gradient).

Reported per row: steps/s and images/s of gen (images per domain for CycleGAN), the FLOPs of
one step from XLA's cost analysis of the compiled gen step (divided by steps_per_call where
the scan is unrolled, as on CPU; from a one-step program where it is a loop, whose body XLA
counts once) and the achieved TFLOP/s
(FLOPs x steps/s), its share of the device's dense peak (PEAK_TFLOPS; '-' on CPU or an
unknown device), the torch eager and torch.compile steps/s, and gen's speed over each.
float32 on Ampere/Hopper: XLA's default precision and cuDNN's default both run float32
convolutions on TF32 tensor cores (torch matmuls are set to TF32 too, for parity), so the
share of the fp32 (non-tensor) peak can exceed 100%. The same FLOP count serves both sides.

Targets: CPU: DCGAN-64 >= 1x PyTorch eager. GPU: DCGAN-64 and CycleGAN-256 >= 2x PyTorch
eager and >= 1x torch.compile; CycleGAN-256 in bfloat16 >= 40% of the dense bf16 peak.

On CPU, PyTorch's OpenMP threads slow down many-fold when another process uses a core:
measure on an otherwise idle machine.

Writes JSON (info + rows) and a markdown table (one row per model and dtype) and prints the
table. With torch on the same GPU, JAX allocates on demand (XLA_PYTHON_CLIENT_PREALLOCATE
defaults to false here) and torch's cache is emptied after each of its measurements.
"""

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # leave GPU memory for torch

import argparse
import contextlib
import dataclasses
import json
import random
import time

import jax
import numpy as np
from timing import calls_per_sec, machine_info, steps_per_sec

from gen.configs import cyclegan as cyclegan_configs
from gen.configs import gan as gan_configs
from gen.configs import vae as vae_configs
from gen.data import DatasetInfo
from gen.families import base
from gen.families import get as get_family
from gen.models.dcgan import layout
from gen.train import sharding
from gen.train.step import compile_steps


@dataclasses.dataclass(frozen=True)
class Row:
  name: str
  family: str  # gan | cyclegan | vae
  image_shape: tuple[int, int, int]
  batch: int  # per domain for CycleGAN


ROWS = {r.name: r for r in (
    Row("dcgan28", "gan", (28, 28, 1), 64),
    Row("dcgan64", "gan", (64, 64, 3), 128),
    Row("cyclegan256_b1", "cyclegan", (256, 256, 3), 1),
    Row("cyclegan256_b8", "cyclegan", (256, 256, 3), 8),
    Row("vae", "vae", (28, 28, 1), 100),
)}

# Dense peak TFLOP/s by device kind (first lowercase substring of jax's device_kind that
# matches). GPUs: the bf16 tensor-core and fp32 non-tensor-core figures (SXM unless named);
# TPUs: the bf16 MXU figure for both (XLA:TPU runs float32 matmuls as bf16 passes by default).
PEAK_TFLOPS = (
    ("h100 pcie", {"bfloat16": 756.0, "float32": 51.0}),
    ("h100", {"bfloat16": 989.0, "float32": 67.0}),
    ("h200", {"bfloat16": 989.0, "float32": 67.0}),
    ("a100", {"bfloat16": 312.0, "float32": 19.5}),
    ("tpu v4", {"bfloat16": 275.0, "float32": 275.0}),
    ("tpu v5 lite", {"bfloat16": 197.0, "float32": 197.0}),
    ("tpu v5e", {"bfloat16": 197.0, "float32": 197.0}),
    ("tpu v5", {"bfloat16": 459.0, "float32": 459.0}),  # v5p
)


def peak_tflops(device_kind: str, dtype: str) -> float | None:
  kind = device_kind.lower()
  for key, peaks in PEAK_TFLOPS:
    if key in kind:
      return peaks[dtype]
  return None  # CPU or unknown


def gen_config(row: Row, dtype: str):
  if row.family == "gan":
    config = gan_configs.get_config()
  elif row.family == "vae":
    config = vae_configs.get_config()
  else:  # the paper's 256x256 setup (any TFDS variant): ngf = ndf = 64, 9 blocks at 256
    config = cyclegan_configs.get_config("horse2zebra")
  config.batch_size = row.batch
  config.compute_dtype = dtype
  return config


# -- gen ----------------------------------------------------------------------------------------


def _flops(cost) -> float | None:
  """'flops' from a cost analysis: a dict, or a list of them (one per program) in older jax."""
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else None
  return float(cost["flops"]) if cost and "flops" in cost else None


def time_gen(row: Row, dtype: str, steps_per_call: int, seconds: float) -> dict:
  config = gen_config(row, dtype)
  spc = steps_per_call or config.steps_per_call
  family = get_family(config.family)(config, DatasetInfo("synthetic", row.image_shape, 0, 1334))
  replicated = sharding.replicated(sharding.make_mesh())
  state = jax.jit(family.init_state, out_shardings=replicated)(jax.random.key(0))
  lo, hi = family.value_range
  rng = np.random.default_rng(0)
  image = lambda: {"image": rng.uniform(lo, hi, (spc, row.batch) + row.image_shape).astype(np.float32)}
  domains = family.streams.names if isinstance(family.streams, base.Domains) else ("",)
  batches = jax.device_put(family.streams.combine([image() for _ in domains]), replicated)
  run = compile_steps(family, replicated)
  started = time.perf_counter()
  compiled = run.lower(state, batches).compile()
  compile_seconds = time.perf_counter() - started
  # XLA counts a while loop's body once: compile_steps unrolls the scan on CPU only (see there),
  # so elsewhere the FLOPs of one step come from a one-step program.
  if spc == 1 or jax.default_backend() == "cpu":
    flops = _flops(compiled.cost_analysis())
    flops = flops / spc if flops is not None else None
  else:
    one = jax.tree.map(lambda x: x[:1], batches)
    flops = _flops(run.lower(state, one).compile().cost_analysis())
  _, calls = calls_per_sec(compiled, state, batches, seconds)
  return {"steps_per_call": spc, "compile_seconds": compile_seconds,
          "steps_per_sec": calls * spc, "flops_per_step": flops}


# -- PyTorch ------------------------------------------------------------------------------------
# Each builder returns step(): one full update, as the gen family's. `compiled`: the modules
# and the optimizer steps under torch.compile.


def _torch_setup(device, bf16: bool, compiled: bool):
  import torch
  autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
  module = torch.compile if compiled else (lambda m: m)

  def adam(params, lr, betas, eps=1e-8):
    params = list(params)
    # Eager: the fused CUDA kernel where there is one. Compiled: inductor fuses the step itself.
    fused = device.type == "cuda" and not compiled
    opt = torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, **({"fused": True} if fused else {}))
    update = torch.compile(opt.step) if compiled else opt.step
    return params, opt, update

  return autocast, module, adam


def _requires_grad(nets, flag: bool) -> None:
  """junyanz's set_requires_grad: D's weights take no gradient in the G step (under
  torch.compile this selects a graph without their weight gradients; both graphs are cached)."""
  for net in nets:
    for p in net.parameters():
      p.requires_grad_(flag)


def _normal_init(net, std=0.02):
  import torch
  for m in net.modules():
    if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
      torch.nn.init.normal_(m.weight, 0.0, std)
      if m.bias is not None:
        torch.nn.init.zeros_(m.bias)


def torch_dcgan(row: Row, config, device, bf16: bool, compiled: bool):
  """pytorch/examples/dcgan (BCE-with-logits == gen's non-saturating loss), Adam(2e-4, 0.5, 0.999).
  Like gen: one G forward serves both updates, G's loss is taken through the updated D."""
  import torch
  from torch import nn
  autocast, module, adam = _torch_setup(device, bf16, compiled)
  size, _, channels = row.image_shape
  base, stages = layout(size)
  m, batch = config.model, row.batch
  nz, ngf, ndf = m.z_dim, m.ngf, m.ndf
  c = ngf * 2 ** (stages - 1)
  g_layers = [nn.ConvTranspose2d(nz, c, base, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU(True)]
  for _ in range(stages - 1):
    g_layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
    c //= 2
  g_layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1, bias=False), nn.Tanh()]
  d_layers, c = [nn.Conv2d(channels, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)], ndf
  for _ in range(stages - 1):
    d_layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2, True)]
    c *= 2
  d_layers += [nn.Conv2d(c, 1, base, 1, 0, bias=False)]
  net_g, net_d = nn.Sequential(*g_layers).to(device), nn.Sequential(*d_layers).to(device)
  _normal_init(net_g)
  _normal_init(net_d)
  o = config.optim
  g_params, opt_g, update_g = adam(net_g.parameters(), o.g_lr, (o.b1, o.b2))
  d_params, opt_d, update_d = adam(net_d.parameters(), o.d_lr, (o.b1, o.b2))
  G, D = module(net_g), module(net_d)
  bce = nn.BCEWithLogitsLoss()
  real = torch.rand(batch, channels, size, size, device=device) * 2 - 1
  ones, zeros = torch.ones(batch, device=device), torch.zeros(batch, device=device)

  def step():
    with autocast():
      fake = G(torch.randn(batch, nz, 1, 1, device=device))
      loss_d = (bce(D(real).view(-1).float(), ones)
                + bce(D(fake.detach()).view(-1).float(), zeros))
    opt_d.zero_grad()
    loss_d.backward(inputs=d_params)
    update_d()
    _requires_grad([net_d], False)
    with autocast():
      loss_g = bce(D(fake).view(-1).float(), ones)
    opt_g.zero_grad()
    loss_g.backward(inputs=g_params)
    update_g()
    _requires_grad([net_d], True)

  return step


def torch_cyclegan(row: Row, config, device, bf16: bool, compiled: bool):
  """junyanz/pytorch-CycleGAN-and-pix2pix: ResnetGenerator (reflection padding, InstanceNorm2d
  without affine parameters, no dropout, biases on: what `get_norm_layer('instance')` gives),
  NLayerDiscriminator, LSGAN, ImagePool, Adam(2e-4, 0.5, 0.999); one `optimize_parameters`.
  gen/models/cyclegan.py builds the same networks: same padding (reflect 3 around the 7x7
  convs and 1 inside the residual blocks, zero padding 1 in the stride-2 and PatchGAN convs),
  the same up-sampling (3x3 stride-2 transposed conv, output_padding 1) and instance norm
  (eps 1e-5, no affine) - with one difference: flax's InstanceNorm computes its statistics in
  float32 under bf16, torch's under autocast in bf16 input precision (cuDNN accumulates in
  float32). gen draws its pool decisions from the step key inside the program; the
  reference draws them with Python's `random` on the host."""
  import torch
  import torch.nn.functional as F
  from torch import nn
  autocast, module, adam = _torch_setup(device, bf16, compiled)
  m, l = config.model, config.loss
  size, _, channels = row.image_shape
  n_blocks = m.blocks or (9 if size >= 256 else 6)
  norm = lambda c: nn.InstanceNorm2d(c)  # affine=False, track_running_stats=False

  class ResnetBlock(nn.Module):
    def __init__(self, dim):
      super().__init__()
      self.conv_block = nn.Sequential(
          nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), norm(dim), nn.ReLU(True),
          nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), norm(dim))

    def forward(self, x):
      return x + self.conv_block(x)

  def resnet_generator():
    ngf = m.ngf
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(channels, ngf, 7, padding=0, bias=True), norm(ngf),
              nn.ReLU(True)]
    for i in range(2):
      mult = 2**i
      layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=True),
                 norm(ngf * mult * 2), nn.ReLU(True)]
    layers += [ResnetBlock(ngf * 4) for _ in range(n_blocks)]
    for i in range(2):
      mult = 2**(2 - i)
      layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1,
                                    output_padding=1, bias=True),
                 norm(ngf * mult // 2), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, channels, 7, padding=0), nn.Tanh()]
    return nn.Sequential(*layers)

  def n_layer_discriminator():
    ndf, n_layers = m.ndf, m.d_layers
    seq = [nn.Conv2d(channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, n_layers):
      prev, mult = mult, min(2**n, 8)
      seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=True), norm(ndf * mult),
              nn.LeakyReLU(0.2, True)]
    prev, mult = mult, min(2**n_layers, 8)
    seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=True), norm(ndf * mult),
            nn.LeakyReLU(0.2, True), nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
    return nn.Sequential(*seq)

  class ImagePool:
    def __init__(self, pool_size):
      self.pool_size, self.images = pool_size, []

    def query(self, images):
      if self.pool_size == 0:
        return images
      out = []
      for image in images:
        image = image.unsqueeze(0)
        if len(self.images) < self.pool_size:
          self.images.append(image)
          out.append(image)
        elif random.uniform(0, 1) > 0.5:
          i = random.randint(0, self.pool_size - 1)
          out.append(self.images[i].clone())
          self.images[i] = image
        else:
          out.append(image)
      return torch.cat(out, 0)

  nets = [resnet_generator(), resnet_generator(), n_layer_discriminator(), n_layer_discriminator()]
  for net in nets:
    net.to(device)
    _normal_init(net)
  o = config.optim
  g_params, opt_g, update_g = adam([*nets[0].parameters(), *nets[1].parameters()], o.lr, (o.b1, o.b2))
  d_params, opt_d, update_d = adam([*nets[2].parameters(), *nets[3].parameters()], o.lr, (o.b1, o.b2))
  G_ab, G_ba, D_a, D_b = (module(net) for net in nets)
  pool_a, pool_b = ImagePool(config.pool.size), ImagePool(config.pool.size)
  real_a = torch.rand(row.batch, channels, size, size, device=device) * 2 - 1
  real_b = torch.rand(row.batch, channels, size, size, device=device) * 2 - 1
  lam, idt = l.cycle_weight, l.identity_weight
  mse = lambda x, target: F.mse_loss(x.float(), torch.full_like(x, target, dtype=torch.float32))
  l1 = lambda x, y: F.l1_loss(x.float(), y)

  def step():
    _requires_grad(nets[2:], False)
    with autocast():
      fake_b, fake_a = G_ab(real_a), G_ba(real_b)
      loss_g = (mse(D_b(fake_b), 1.0) + mse(D_a(fake_a), 1.0)
                + lam * (l1(G_ba(fake_b), real_a) + l1(G_ab(fake_a), real_b))
                + lam * idt * (l1(G_ba(real_a), real_a) + l1(G_ab(real_b), real_b)))
    opt_g.zero_grad()
    loss_g.backward(inputs=g_params)
    update_g()
    _requires_grad(nets[2:], True)
    shown_a, shown_b = pool_a.query(fake_a.detach()), pool_b.query(fake_b.detach())
    with autocast():
      loss_d = (0.5 * (mse(D_a(real_a), 1.0) + mse(D_a(shown_a), 0.0))
                + 0.5 * (mse(D_b(real_b), 1.0) + mse(D_b(shown_b), 0.0)))
    opt_d.zero_grad()
    loss_d.backward(inputs=d_params)
    update_d()

  return step


def torch_vae(row: Row, config, device, bf16: bool, compiled: bool):
  """The IWAE paper's MLP VAE as gen/models/vae.py builds it (tanh, Glorot-uniform weights, zero
  biases), dynamically binarised input, ELBO with the closed-form KL (k = 1, beta 1)."""
  import torch
  import torch.nn.functional as F
  from torch import nn
  m, o = config.model, config.optim
  if (m.kind, m.likelihood, m.binarize, config.objective.train_k) != ("mlp", "bernoulli", True, 1):
    raise ValueError("the PyTorch VAE mirrors the default config only (MLP, binarised Bernoulli, ELBO)")
  autocast, module, adam = _torch_setup(device, bf16, compiled)
  pixels = int(np.prod(row.image_shape))

  def mlp(inputs, outputs):
    layers, width = [], inputs
    for _ in range(m.hidden_layers):
      layers += [nn.Linear(width, m.hidden_units), nn.Tanh()]
      width = m.hidden_units
    layers.append(nn.Linear(width, outputs))
    net = nn.Sequential(*layers).to(device)
    for layer in net:
      if isinstance(layer, nn.Linear):
        nn.init.xavier_uniform_(layer.weight)
        nn.init.zeros_(layer.bias)
    return net

  enc_net, dec_net = mlp(pixels, 2 * m.latents), mlp(m.latents, pixels)
  params, opt, update = adam([*enc_net.parameters(), *dec_net.parameters()], o.lr, (o.b1, o.b2), o.eps)
  enc, dec = module(enc_net), module(dec_net)
  data = torch.rand(row.batch, pixels, device=device)

  def step():
    x = torch.bernoulli(data)
    with autocast():
      mean, log_scale = enc(x).float().chunk(2, dim=-1)
      z = mean + torch.exp(log_scale) * torch.randn_like(mean)
      logits = dec(z).float()
      log_px = (x * logits - F.softplus(logits)).sum(-1)
      kl = (0.5 * (mean * mean + torch.exp(2.0 * log_scale) - 1.0) - log_scale).sum(-1)
      loss = torch.mean(kl - log_px)
    opt.zero_grad()
    loss.backward(inputs=params)
    update()

  return step


TORCH_BUILDERS = {"gan": torch_dcgan, "cyclegan": torch_cyclegan, "vae": torch_vae}


def time_torch(row: Row, dtype: str, compiled: bool, seconds: float, every: int) -> dict:
  """{'steps_per_sec', 'warmup_seconds', 'error'}: steps_per_sec None when torch is missing or
  the step failed (error: the first line of the message)."""
  try:
    import torch
  except ImportError:
    return {"steps_per_sec": None, "warmup_seconds": None, "error": "torch not installed"}
  device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
  sync = torch.cuda.synchronize if device.type == "cuda" else None
  torch.manual_seed(0)
  random.seed(0)
  try:
    if compiled:
      torch._dynamo.reset()
    step = TORCH_BUILDERS[row.family](row, gen_config(row, dtype), device, dtype == "bfloat16", compiled)
    warmup_seconds, sps = steps_per_sec(step, seconds, warmup=3 if compiled else 1, sync=sync,
                                        every=every)
    return {"steps_per_sec": sps, "warmup_seconds": warmup_seconds, "error": None}
  except Exception as e:
    message = (str(e).strip().splitlines() or [""])[0]
    print(f"  torch {'compile' if compiled else 'eager'} failed: {type(e).__name__}: {message}",
          flush=True)
    return {"steps_per_sec": None, "warmup_seconds": None, "error": f"{type(e).__name__}: {message}"}
  finally:
    step = None
    if device.type == "cuda":
      torch.cuda.empty_cache()


# -- the table ----------------------------------------------------------------------------------


def measure(row: Row, dtype: str, steps_per_call: int, seconds: float, torch_modes) -> dict:
  g = time_gen(row, dtype, steps_per_call, seconds)
  sps, flops = g["steps_per_sec"], g["flops_per_step"]
  tflops = flops * sps / 1e12 if flops else None
  peak = peak_tflops(jax.devices()[0].device_kind, dtype)
  out = {"model": row.name, "family": row.family,
         "image": "x".join(map(str, row.image_shape)), "batch": row.batch, "dtype": dtype,
         "steps_per_call": g["steps_per_call"], "compile_seconds": g["compile_seconds"],
         "jax_steps_per_sec": sps, "jax_images_per_sec": sps * row.batch,
         "gflop_per_step": flops / 1e9 if flops else None, "tflops": tflops,
         "peak_tflops": peak, "peak_share": tflops / peak if tflops and peak else None}
  for mode in ("eager", "compile"):
    t = (time_torch(row, dtype, mode == "compile", seconds, g["steps_per_call"])
         if mode in torch_modes else {"steps_per_sec": None, "warmup_seconds": None, "error": "not run"})
    out[f"torch_{mode}_steps_per_sec"] = t["steps_per_sec"]
    out[f"torch_{mode}_warmup_seconds"] = t["warmup_seconds"]
    out[f"torch_{mode}_error"] = t["error"]
    out[f"jax_over_{mode}"] = sps / t["steps_per_sec"] if t["steps_per_sec"] else None
  return out


COLUMNS = (  # (header, key, format)
    ("model", "model", "{}"), ("image", "image", "{}"), ("batch", "batch", "{}"),
    ("dtype", "dtype", "{}"), ("spc", "steps_per_call", "{}"),
    ("gen steps/s", "jax_steps_per_sec", "{:.3g}"), ("gen img/s", "jax_images_per_sec", "{:.3g}"),
    ("GFLOP/step", "gflop_per_step", "{:.1f}"), ("TFLOP/s", "tflops", "{:.3g}"),
    ("% peak", "peak_share", "{:.1%}"),
    ("eager steps/s", "torch_eager_steps_per_sec", "{:.3g}"),
    ("compile steps/s", "torch_compile_steps_per_sec", "{:.3g}"),
    ("gen/eager", "jax_over_eager", "{:.2f}x"), ("gen/compile", "jax_over_compile", "{:.2f}x"),
)


def markdown(rows: list[dict]) -> str:
  cell = lambda r, key, fmt: "-" if r.get(key) is None else fmt.format(r[key])
  lines = ["| " + " | ".join(h for h, _, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
  lines += ["| " + " | ".join(cell(r, k, f) for _, k, f in COLUMNS) + " |" for r in rows]
  return "\n".join(lines)


def write(args, info: dict, rows: list[dict]) -> None:
  table = markdown(rows)
  for path in (args.out, args.markdown):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump({"info": info, "rows": rows, "table": table}, f, indent=2)
  notes = [f"- torch.compile {r['model']} {r['dtype']}: {r['torch_compile_error']}"
           for r in rows if r["torch_compile_error"] not in (None, "not run")]
  with open(args.markdown, "w") as f:
    f.write(" ".join(f"{k}={v}" for k, v in info.items()) + "\n\n" + table + "\n"
            + ("\n" + "\n".join(notes) + "\n" if notes else ""))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rows", default=",".join(ROWS), help=f"any of {', '.join(ROWS)}")
  parser.add_argument("--dtypes", default="float32,bfloat16")
  parser.add_argument("--seconds", type=float, default=10.0, help="timing window per measurement")
  parser.add_argument("--steps-per-call", type=int, default=0, help="0: the config's")
  parser.add_argument("--torch", default="eager,compile", help="PyTorch columns to measure ('' none)")
  parser.add_argument("--out", default="benchmarks/results/train_step.json")
  parser.add_argument("--markdown", default="benchmarks/results/train_step.md")
  args = parser.parse_args()
  names, dtypes = args.rows.split(","), args.dtypes.split(",")
  for name in names:
    if name not in ROWS:
      parser.error(f"unknown row {name!r}: use {', '.join(ROWS)}")
  for dtype in dtypes:
    if dtype not in ("float32", "bfloat16"):
      parser.error(f"unknown dtype {dtype!r}: float32 or bfloat16")
  torch_modes = [m for m in args.torch.split(",") if m]

  info = machine_info()
  try:
    import torch
    info["torch"] = torch.__version__
    info["torch_device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    info["torch_threads"] = torch.get_num_threads()
    if torch.cuda.is_available():
      torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
      torch.set_float32_matmul_precision("high")  # TF32 matmuls, as XLA's default precision
  except ImportError:
    print("torch not installed (pip install -e '.[bench]'): no PyTorch columns")
  print(" ".join(f"{k}={v}" for k, v in info.items()), flush=True)
  rows = []
  for name in names:
    for dtype in dtypes:
      print(f"{name} {dtype} ...", flush=True)
      rows.append(measure(ROWS[name], dtype, args.steps_per_call, args.seconds, torch_modes))
      print(markdown(rows[-1:]).splitlines()[-1], flush=True)
      write(args, info, rows)
  print(markdown(rows))
  print(f"wrote {args.out} and {args.markdown}")


if __name__ == "__main__":
  main()
