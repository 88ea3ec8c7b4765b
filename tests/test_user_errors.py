"""Mistakes a new user makes, each one clear line (the CLI prints it as `error: ...`, exit 2).

Most are checked in process on the function that raises; test_train.py, test_reliability.py
and the family tests run the entry points themselves."""

import json

import pytest

from gen.configs.gan import get_config
from gen.data import open_builder
from gen.errors import UserError
from gen.images import read_images, write_npz
from gen.runs import run_dir
from gen.tools import runner as cli
from gen.train import train


def test_config_key_typos_name_the_key_the_flag_and_the_fix():
  for argv, key, text in (
      (["--config.model.ngff=3"], KeyError('\'ngff\'\nDid you mean "ngf" instead of "ngff"?'),
       "unknown config key model.ngff in --config.model.ngff (did you mean model.ngf?)"),
      (["--config.modle.ngf=3"], KeyError('\'modle\'\nDid you mean "model" instead of "modle"?'),
       "unknown config key modle in --config.modle.ngf (did you mean model?)"),
      (["--config.zz=1"], KeyError("'zz'"), "unknown config key zz in --config.zz")):
    assert cli._flag_error(key, ["train_gan.py", *argv]) == text


def test_a_config_file_that_is_not_python():
  e = SyntaxError("invalid decimal literal", ("README.md", 27, 1, "x"))
  assert cli._flag_error(e, []) == ("the --config file README.md is not a Python config file: "
                                    "invalid decimal literal (line 27)")


@pytest.mark.parametrize("change,message", [
    (dict(num_steps=-5), "num_steps=-5 must be >= 0"),
    (dict(batch_size=0), "batch_size=0 must be positive"),
    (dict(steps_per_call=0), "steps_per_call=0 must be positive"),
    (dict(sample_grid=0), "sample_grid=0 must be positive"),
    (dict(eval_every=-1), r"eval_every=-1 must be >= 0 \(0 = only at the end\)"),
])
def test_trainer_settings(tmp_path, change, message):
  c = get_config("tiny")
  c.update(change)
  with pytest.raises(UserError, match=f"^{message}"):
    train(c, str(tmp_path))


def test_eval_best_mode_and_load_size(tmp_path):
  c = get_config("tiny")
  c.eval.best_mode = "lowest"
  with pytest.raises(UserError, match=r"^eval.best_mode='lowest' is not one of min, max$"):
    train(c, str(tmp_path))
  c = get_config("tiny")
  c.data.load_size = 20
  with pytest.raises(UserError,
                     match=r"data.load_size=20 .* needs a square 0 < data.image_size <= load_size"):
    train(c, str(tmp_path))


def test_an_unknown_dataset_config_lists_the_real_ones():
  with pytest.raises(UserError, match=r"^dataset 'cycle_gan' has no config 'nope'; its configs: "
                                      r"apple2orange, .*horse2zebra"):
    open_builder("cycle_gan/nope")


def test_files_of_the_wrong_kind(tmp_path):
  text = tmp_path / "notes.txt"
  text.write_text("hello")
  with pytest.raises(UserError, match="is not an .npz file .* nor a folder of images"):
    read_images(str(text))
  with pytest.raises(UserError, match=r"^--out '.*s.png' must end in .npz$"):
    write_npz(str(tmp_path / "s.png"), {})
  (tmp_path / "config.json").write_text("{broken")
  with pytest.raises(UserError, match=r"^cannot read .*config.json: Expecting property name"):
    run_dir.RunDir(str(tmp_path)).read_config()
  (tmp_path / "config.json").write_text(json.dumps({"family": "gan"}))
  assert run_dir.RunDir(str(tmp_path)).read_config().family == "gan"
