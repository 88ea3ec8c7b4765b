import numpy as np
import pytest
import tensorflow_datasets as tfds

from gen.data import Pipeline, builders, mnist5k, open_builder
from gen.errors import UserError


def test_mnist5k_is_a_real_tfds_dataset(mnist5k_builder):
  info = mnist5k_builder.info
  assert info.splits["train"].num_examples == 4000
  assert info.splits["test"].num_examples == 1000
  assert info.features["image"].shape == (28, 28, 1)
  assert info.features["label"].num_classes == 10
  # Through the public TFDS API, the data are the CSV's rows, split 400/100 per class.
  csv_images, csv_labels = mnist5k.load_rows()
  for split, per_class in (("train", 400), ("test", 100)):
    ds = tfds.as_numpy(mnist5k_builder.as_dataset(split=split, batch_size=-1))
    assert np.array_equal(np.bincount(ds["label"], minlength=10), [per_class] * 10)
    idx = mnist5k.split_indices(csv_labels, split)
    rows = lambda images, labels: sorted(zip(labels.tolist(), (im.tobytes() for im in images)))
    assert rows(ds["image"], ds["label"]) == rows(csv_images[idx], csv_labels[idx])
  # Train and test are disjoint rows: 400 + 100 per class.
  train, test = (mnist5k.split_indices(csv_labels, s) for s in ("train", "test"))
  assert len(set(train) | set(test)) == 5000


def _take(stream, n):
  it = iter(stream)
  return [next(it) for _ in range(n)]


def test_pipeline_scales_shuffles_and_is_deterministic(mnist5k_builder):
  a = _take(Pipeline(mnist5k_builder, "train", batch_size=50, seed=3), 3)
  b = _take(Pipeline(mnist5k_builder, "train", batch_size=50, seed=3), 3)
  c = _take(Pipeline(mnist5k_builder, "train", batch_size=50, seed=4), 1)
  assert a[0]["image"].shape == (50, 28, 28, 1) and a[0]["image"].dtype == np.float32
  assert a[0]["label"].dtype == np.int32
  assert a[0]["image"].min() == -1.0 and a[0]["image"].max() == 1.0
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["image"], y["image"])
  assert not np.array_equal(a[0]["label"], c[0]["label"])
  # Shuffled: the file is sorted by label, a shuffled batch mixes classes.
  assert len(np.unique(a[0]["label"])) >= 5
  unit = _take(Pipeline(mnist5k_builder, "train", batch_size=50, seed=3, value_range=(0.0, 1.0)), 1)
  np.testing.assert_allclose(unit[0]["image"], (a[0]["image"] + 1) / 2, atol=1e-6)


def test_pipeline_resumes_at_any_example_across_epochs(mnist5k_builder):
  # 4000 examples, batch 64: batch 62 straddles the epoch boundary.
  full = _take(Pipeline(mnist5k_builder, "train", batch_size=64, seed=1), 66)
  resumed = _take(Pipeline(mnist5k_builder, "train", batch_size=64, seed=1, start=61 * 64), 5)
  for x, y in zip(full[61:], resumed):
    np.testing.assert_array_equal(x["image"], y["image"])
    np.testing.assert_array_equal(x["label"], y["label"])
  # Each epoch is a permutation of the split.
  labels = np.concatenate([b["label"] for b in full])[:4000]
  assert np.array_equal(np.bincount(labels), [400] * 10)


def test_one_pass_keeps_the_remainder_in_file_order(mnist5k_builder):
  batches = list(Pipeline(mnist5k_builder, "test", batch_size=300, repeat=False))
  assert [len(b["label"]) for b in batches] == [300, 300, 300, 100]


def test_random_flip_and_resize(mnist5k_builder):
  plain = _take(Pipeline(mnist5k_builder, "train", batch_size=16, seed=0), 1)[0]["image"]
  flipped = _take(Pipeline(mnist5k_builder, "train", batch_size=16, seed=0, random_flip=True), 1)[0]["image"]
  same = [np.array_equal(p, f) for p, f in zip(plain, flipped)]
  mirrored = [np.array_equal(p[:, ::-1], f) for p, f in zip(plain, flipped)]
  assert all(s or m for s, m in zip(same, mirrored)) and any(mirrored) and any(same)
  big = Pipeline(mnist5k_builder, "train", batch_size=4, image_size=32)
  assert big.info.image_shape == (32, 32, 1)
  assert _take(big, 1)[0]["image"].shape == (4, 32, 32, 1)


def test_processes_split_each_global_batch_of_the_one_process_stream(mnist5k_builder):
  """P processes yield, side by side, the global batches of one process: training (shuffled,
  resumed mid-epoch) and evaluation (one pass, no example dropped or repeated)."""
  kw = dict(seed=5, start=4990, random_flip=True)  # 4990: the stream crosses an epoch
  parts = [_take(Pipeline(mnist5k_builder, "train", batch_size=8, process_index=i,
                          process_count=2, **kw), 3) for i in range(2)]
  whole = _take(Pipeline(mnist5k_builder, "train", batch_size=16, **kw), 3)
  for step in range(3):
    for key in ("image", "label"):
      np.testing.assert_array_equal(
          np.concatenate([parts[0][step][key], parts[1][step][key]]), whole[step][key])

  evals = [Pipeline(mnist5k_builder, "test", batch_size=300, repeat=False, process_index=i,
                    process_count=2) for i in range(2)]
  assert [p.num_batches for p in evals] == [2, 2]  # 1,000 examples in global batches of 600
  got = [list(p) for p in evals]
  assert [[len(b["image"]) for b in g] for g in got] == [[300, 300], [300, 100]]
  together = np.concatenate([b["image"] for i in range(2) for b in (got[0][i], got[1][i])])
  one = np.concatenate([b["image"] for b in Pipeline(mnist5k_builder, "test", batch_size=600,
                                                     repeat=False)])
  np.testing.assert_array_equal(together, one)


def test_pipeline_under_tfds_mock_data(monkeypatch, tmp_path):
  monkeypatch.setattr(builders, "_network_available", lambda *a, **k: True)
  with tfds.testing.mock_data(num_examples=12):
    builder = open_builder("cifar10", str(tmp_path))
    batch = _take(Pipeline(builder, "train", batch_size=4, seed=0), 4)[-1]
  assert batch["image"].shape == (4, 32, 32, 3)
  assert batch["image"].min() >= -1.0 and batch["image"].max() <= 1.0
  assert batch["label"].shape == (4,) and batch["label"].max() < 10


def test_unknown_dataset_is_a_user_error():
  with pytest.raises(UserError, match="unknown dataset 'no_such_dataset'"):
    open_builder("no_such_dataset")


def test_unprepared_dataset_offline_fails_fast(monkeypatch, tmp_path):
  monkeypatch.setattr(builders, "_network_available", lambda *a, **k: False)
  with pytest.raises(UserError, match=r"dataset 'cifar10' is not prepared in .* cannot be downloaded"):
    open_builder("cifar10", str(tmp_path))


def test_missing_split_is_a_user_error(mnist5k_builder):
  with pytest.raises(UserError, match="has no split 'validation'"):
    Pipeline(mnist5k_builder, "validation", batch_size=4)
