"""Members: K models in one vmapped program equal K separate runs, shard over devices, resume
bitwise, stop or drop on NaN, and every per-member output (rows, pictures, eval, tools)."""

import hashlib
import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY_GAN, TINY_VAE, assert_same_training, metrics_rows, run, shared_run

from gen.configs import cyclegan, diffusion, gan, vae
from gen.errors import UserError
from gen.runs import run_dir
from gen.runs.checkpointing import Checkpointer
from gen.train import train

CONFIGS = {"gan": gan.get_config, "vae": vae.get_config, "cyclegan": cyclegan.get_config,
           "diffusion": diffusion.get_config}
# Loss names compared per family (each is logged every step by the :tiny variants).
LOSSES = {"gan": ("d_loss", "g_loss", "d_grad_norm", "g_grad_norm", "r1"),
          "vae": ("loss", "neg_elbo", "kl", "grad_norm"),
          "cyclegan": ("g_loss", "cycle_a", "idt_b", "d_a", "d_b", "g_grad_norm"),
          "diffusion": ("loss", "grad_norm")}
# Each family: K members from seeds, from varied values, or both (K = 2 for the CycleGAN, the
# costliest to compile and run).
MEMBERS = {"gan": dict(seeds=3, vary="loss.r1_gamma=1"),
           "vae": dict(seeds=1, vary="optim.lr=1e-3,3e-3,1e-2"),
           "cyclegan": dict(seeds=2, vary="loss.cycle_weight=5")}


def tiny(family, num_steps=4, **top):
  c = CONFIGS[family]("tiny")
  c.num_steps, c.checkpoint_every, c.eval.metrics, c.eval.best_metric = num_steps, 2, "", ""
  c.update(top)
  return c


def by_member(workdir):
  out = {}
  for row in metrics_rows(workdir):
    out.setdefault(row.get("member"), []).append(row)
  return out


@pytest.mark.slow
@pytest.mark.parametrize("family,mapping", [("gan", "vmap"), ("gan", "loop"), ("vae", "vmap"),
                                            ("cyclegan", "vmap")])
def test_each_member_follows_its_separate_run(tmp_path, family, mapping):
  """K members in one program, each against a separate run with that seed and value: the
  same losses, step by step, within float32 reassociation (conftest.RTOL: vmapped convolutions
  sum in another order). `vmap` is what GPUs and TPUs run, `loop` what CPUs run
  (gen.train.step.member_map)."""
  config = tiny(family, data={"member_order": True}, member_map=mapping, **MEMBERS[family])
  train(config, str(tmp_path / "members"))
  rows = by_member(str(tmp_path / "members"))
  k = 2 if family == "cyclegan" else 3
  assert sorted(rows) == list(range(k))
  for i in range(k):
    tags = {k: v for k, v in rows[i][0].items() if k in ("member", "seed") or "." in k}
    seed, varied = tags["seed"], {k: v for k, v in tags.items() if "." in k}
    assert seed == config.seed + (i % config.seeds)
    separate = tiny(family, seed=seed)
    for name, value in varied.items():
      section, leaf = name.split(".")
      separate[section][leaf] = type(separate[section][leaf])(value)
    # gan-vmap and gan-loop compare with the same separate runs: made once.
    digest = hashlib.sha1(separate.to_json().encode()).hexdigest()[:16]
    workdir = shared_run(f"{family}-{digest}", lambda w: train(separate, w))
    alone = metrics_rows(workdir)
    assert [r["step"] for r in rows[i]] == [r["step"] for r in alone] == [1, 2, 3, 4]
    mine = [{k: v for k, v in r.items() if k not in tags} for r in rows[i]]
    assert_same_training(mine, alone, family, names=LOSSES[family])
  # The members really differ (different seeds or values), so the comparison has teeth.
  first = LOSSES[family][0]
  assert len({rows[i][-1][first] for i in range(k)}) == k


@pytest.mark.slow
def test_members_on_four_devices_equal_members_on_one(tmp_path):
  """4 members (2 seeds x 2 learning rates), own data orders, on a 2 member x 2 data mesh of
  fake devices, against the same program on one device."""
  args = ["-m", "gen", "train", *TINY_GAN, "--config.num_steps=4", "--config.seeds=2",
          "--config.vary=optim.d_lr=1e-4,4e-4", "--config.data.member_order=True",
          "--config.member_shards=2", "--config.member_map=vmap"]
  one, four = str(tmp_path / "one"), str(tmp_path / "four")
  p1 = run([*args, f"--workdir={one}", "--config.member_shards=1"], devices=1)
  p4 = run([*args, f"--workdir={four}"], devices=4)
  assert p1.returncode == 0, p1.stderr[-2000:]
  assert p4.returncode == 0, p4.stderr[-2000:]
  a, b = metrics_rows(one), metrics_rows(four)
  assert len(a) == len(b) == 4 * 4
  assert_same_training(a, b, "gan")


@pytest.mark.slow
def test_members_resume_bitwise_and_keep_their_own_outputs(tmp_path):
  config = lambda n: tiny("vae", num_steps=n, seeds=2, vary="objective.beta=0.5,1",
                          eval={"metrics": "nll", "num_importance": 2})
  straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
  train(config(4), straight)
  train(config(2), resumed)
  train(config(4), resumed)
  a = run_dir.restore_run(straight)[2]
  b = run_dir.restore_run(resumed)[2]
  assert np.asarray(a.step).tolist() == [4, 4, 4, 4]  # 4 members, one stacked state
  chex.assert_trees_all_equal(a, b)
  training = lambda w: [r for r in metrics_rows(w) if "loss" in r]  # (the stop at 2 evaluates too)
  assert training(straight) == training(resumed)
  rows = metrics_rows(straight)
  # Rows: member, seed and the varied value beside the metrics; eval rows per member.
  assert {(r["member"], r["seed"], r["objective.beta"]) for r in rows} == {
      (0, 0, 0.5), (1, 1, 0.5), (2, 0, 1.0), (3, 1, 1.0)}
  nll = {r["member"]: r["test_nll_nats"] for r in rows if "test_nll_nats" in r and r["step"] == 4}
  assert sorted(nll) == [0, 1, 2, 3] and len(set(nll.values())) == 4
  # KL weight is each member's own beta.
  kl_w = {r["member"]: r["kl_weight"] for r in rows if r["step"] == 4 and "kl_weight" in r}
  assert kl_w == {0: 0.5, 1: 0.5, 2: 1.0, 3: 1.0}
  for m in range(4):
    assert os.listdir(os.path.join(straight, "samples", f"member_{m:02d}"))
    assert os.listdir(os.path.join(straight, "tensorboard", f"member_{m:02d}"))
  # A resume with other members is refused in one line, nothing touched.
  with pytest.raises(UserError, match=r"holds 4 members .*asks for 2 members"):
    train(tiny("vae", num_steps=6, seeds=2, eval={"metrics": ""}), resumed)


@pytest.mark.slow
def test_one_member_of_a_run_is_what_the_tools_use(tmp_path):
  workdir = str(tmp_path / "run")
  train(tiny("gan", num_steps=2, seeds=2, vary="optim.g_lr=1e-4,2e-4"), workdir)
  config, _, state = run_dir.restore_for_inference(workdir, 3)
  assert (config.seed, config.optim.g_lr, config.seeds, config.vary) == (1, 2e-4, 1, "")
  whole = run_dir.restore_run(workdir)[2]
  np.testing.assert_array_equal(jax.tree.leaves(state.ema_params)[0],
                                jax.tree.leaves(whole.ema_params)[0][3])
  with pytest.raises(UserError, match=r"holds 4 members: pass --member 0..3"):
    run_dir.restore_for_inference(workdir)
  out = str(tmp_path / "s.npz")
  p = run(["-m", "gen", "sample", f"--workdir={workdir}", "--member=1", "--num=5", f"--out={out}"])
  assert p.returncode == 0, p.stderr
  assert np.load(out)["images"].shape == (5, 28, 28, 1)
  p = run(["-m", "gen", "sample", f"--workdir={workdir}", "--num=5", f"--out={out}"])
  assert p.returncode == 2 and p.stderr.strip().splitlines()[-1].startswith("error: ")
  assert "pass --member 0..3" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.slow
def test_a_non_finite_member_stops_the_run_naming_it_or_is_dropped(tmp_path, capsys):
  bad = dict(vary="optim.d_lr=2e-4,1e30", num_steps=6)
  with pytest.raises(UserError, match=r"non-finite .* in member 1 \(seed 0, optim.d_lr=1e\+30\)"):
    train(tiny("gan", **bad), str(tmp_path / "stop"))
  workdir = str(tmp_path / "drop")
  train(tiny("gan", nan_policy="drop", **bad), workdir)
  assert "member 1 (seed 0, optim.d_lr=1e+30): non-finite at step" in capsys.readouterr().err
  rows = by_member(workdir)
  assert [r["step"] for r in rows[0]] == [1, 2, 3, 4, 5, 6]  # member 0 goes on to the end
  assert all(np.isfinite(r["d_loss"]) for r in rows[0])
  dropped = [r for r in rows[1] if "dropped" in r]
  assert len(dropped) == 1 and dropped[0]["dropped"].startswith("non-finite")
  assert all("d_loss" not in r or r["step"] < dropped[0]["step"] for r in rows[1])
  # The frozen member stays finite (its last good state) in every checkpoint.
  state = run_dir.restore_run(workdir)[2]
  assert all(np.isfinite(np.asarray(x, np.float64)).all() for x in jax.tree.leaves(state.d.params))
  ckpt_meta = json.dumps(Checkpointer(run_dir.RunDir(workdir).checkpoints, read_only=True)
                         .latest_readable_meta())
  assert '"alive": [true, false]' in ckpt_meta


@pytest.mark.parametrize("vary,message", [
    ("model.ngf=8,16", r"vary: model.ngf is structural for the gan family .* gen sweep "
                       r"--grid model.ngf=8,16"),
    ("loss.kind=ns", r"loss.kind is structural"),
    ("optim.g_lrr=1", r"vary names optim.g_lrr, which is not a config key \(did you mean optim.g_lr\?\)"),
    ("optim.g_lr=fast", r"vary: optim.g_lr='fast' is not a number"),
    ("optim.g_lr=1e-4,-1", r"vary: member 1 \(seed 0, optim.g_lr=-1\): optim.g_lr=-1.0 must be positive"),
    ("optim.g_lr", r"each part is NAME=V1,V2"),
])
def test_vary_mistakes_are_one_line_before_anything_runs(tmp_path, vary, message):
  workdir = tmp_path / "run"
  with pytest.raises(UserError, match=message):
    train(tiny("gan", vary=vary), str(workdir))
  assert not (workdir / "checkpoints").exists() and not (workdir / "metrics.jsonl").exists()


def test_vary_error_from_the_cli_is_one_line(tmp_path):
  p = run(["-m", "gen", "train", *TINY_VAE, f"--workdir={tmp_path}", "--config.vary=model.latents=2,4"])
  assert p.returncode == 2 and "Traceback" not in p.stderr
  assert p.stderr.strip().splitlines()[-1].startswith("error: vary: model.latents is structural")


def test_a_varied_setting_the_step_never_reads_is_one_line_before_step_0(tmp_path):
  """Members differ only through what `Family.setting` gives the step: a varied value it never
  reads (a term switched off, or a family that reads `self.config` directly) would train every
  member alike."""
  c = tiny("gan", vary="augment.ada_target=0.5,0.7")  # ADA is off: nothing reads its target
  with pytest.raises(UserError, match=r"^vary: the gan step does not read augment.ada_target in "
                                      r"this configuration, so its members would train alike"):
    train(c, str(tmp_path / "off"))
  assert not list((tmp_path / "off" / "checkpoints").glob("*"))  # nothing trained, nothing saved

  import optax
  import toy_family

  from gen.families import register

  @register("toy_reading_the_config")
  class ReadsTheConfig(toy_family.ToyAutoencoder):
    def update(self, state, batch, key):  # the config's lr for every member: a bypass
      grads = jax.tree.map(jnp.zeros_like, state.ae.params)
      tx = optax.adam(self.config.optim.lr)
      return state.replace(ae=state.ae.apply_gradients(grads, tx)), {"loss": jnp.zeros(())}

  c = toy_family.get_config()
  c.family, c.vary = "toy_reading_the_config", "optim.lr=1e-3,1e-2"
  with pytest.raises(UserError, match=r"^vary: the toy_reading_the_config step does not read "
                                      r"optim.lr"):
    train(c, str(tmp_path / "bypass"))
