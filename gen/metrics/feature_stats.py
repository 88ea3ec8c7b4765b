"""Sample-quality statistics on feature vectors (float64 numpy), as the reference tools compute them.

  fid        Frechet distance of Gaussians fitted to two feature sets (Heusel et al. 2017)
  kid        unbiased MMD^2 with the cubic polynomial kernel, mean over random subsets
             (Binkowski et al. 2018; torch-fidelity's defaults: 100 subsets of 1000)
  inception_score   exp E[KL(p(y|x) || p(y))] over 10 splits, mean and std (Salimans et al. 2016)
  precision_recall  k-NN manifold precision and recall, k = 3 (Kynkaanniemi et al. 2019)
  density_coverage  k-NN density and coverage, k = 5 (Naeem et al. 2020)
"""

from __future__ import annotations

import numpy as np


def gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  f = np.asarray(features, np.float64)
  return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
  """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)).

  tr((S1 S2)^(1/2)) is computed as the sum of square roots of the eigenvalues of the
  symmetric PSD matrix S1^(1/2) S2 S1^(1/2) (same spectrum), which stays real and
  stable where a general sqrtm of S1 S2 can turn complex or lose precision.
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  w, v = np.linalg.eigh(s1)
  root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
  inner = root1 @ s2 @ root1
  eig = np.linalg.eigvalsh((inner + inner.T) / 2.0)
  tr_sqrt = np.sqrt(np.clip(eig, 0.0, None)).sum()
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)


def fid(features1, features2) -> float:
  return frechet_distance(*gaussian(features1), *gaussian(features2))


def kid(features1, features2, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
  """(mean, std) over subsets of the unbiased MMD^2, kernel k(x, y) = (x.y / d + 1)^3."""
  x, y = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
  m = min(subset_size, len(x), len(y))
  if m < 2:
    raise ValueError("KID needs at least 2 samples in each set")
  d = x.shape[1]
  rng = np.random.default_rng(seed)
  values = []
  for _ in range(subsets):
    a = x[rng.choice(len(x), m, replace=False)]
    b = y[rng.choice(len(y), m, replace=False)]
    kxx, kyy, kxy = ((a @ a.T / d + 1) ** 3, (b @ b.T / d + 1) ** 3, (a @ b.T / d + 1) ** 3)
    off = lambda k: (k.sum() - np.trace(k)) / (m * (m - 1))
    values.append(off(kxx) + off(kyy) - 2.0 * kxy.mean())
  return float(np.mean(values)), float(np.std(values))


def inception_score(logits, splits: int = 10) -> tuple[float, float]:
  """(mean, std) over `splits` equal parts of exp(mean_x KL(p(y|x) || p(y)))."""
  logits = np.asarray(logits, np.float64)
  log_p = logits - logits.max(axis=1, keepdims=True)
  log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
  scores = []
  for part in np.array_split(log_p, splits):
    log_py = np.log(np.exp(part).mean(axis=0))
    kl = (np.exp(part) * (part - log_py)).sum(axis=1)
    scores.append(np.exp(kl.mean()))
  return float(np.mean(scores)), float(np.std(scores))


def _sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T, 0.0)


def _radii(f: np.ndarray, k: int, batch: int = 1000) -> np.ndarray:
  """Squared distance of each point to its k-th nearest neighbour in f (itself excluded)."""
  return np.concatenate([np.partition(_sq_distances(f[i:i + batch], f), k, axis=1)[:, k]
                         for i in range(0, len(f), batch)])


def _coverage(manifold: np.ndarray, radii: np.ndarray, probes: np.ndarray, batch: int = 1000) -> float:
  """Fraction of probes inside some ball (centre in manifold, squared radius in radii)."""
  inside = [np.any(_sq_distances(probes[i:i + batch], manifold) <= radii[None, :], axis=1)
            for i in range(0, len(probes), batch)]
  return float(np.concatenate(inside).mean())


def precision_recall(real, fake, k: int = 3) -> tuple[float, float]:
  """Precision: fakes inside the real k-NN manifold; recall: reals inside the fake one."""
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  return (_coverage(real, _radii(real, k), fake), _coverage(fake, _radii(fake, k), real))


def density_coverage(real, fake, k: int = 5) -> tuple[float, float]:
  """Density and coverage (Naeem et al. 2020, clovaai/generative-evaluation-prdc, k = 5).

  density = (1 / kM) sum_j #{i: fake_j in B(real_i, r_i)}, coverage = fraction of reals whose
  ball holds some fake; r_i is real_i's distance to its k-th nearest real neighbour.
  """
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  radii = _radii(real, k)
  inside_count, covered = np.zeros(len(fake)), np.zeros(len(real), bool)
  for i in range(0, len(fake), 1000):
    inside = _sq_distances(fake[i:i + 1000], real) < radii[None, :]  # strict, as prdc
    inside_count[i:i + 1000] = inside.sum(axis=1)
    covered |= inside.any(axis=0)
  return float(inside_count.sum() / (k * len(fake))), float(covered.mean())
