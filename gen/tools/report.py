"""Results of a run or a sweep: a table per combination over seeds, curves and one HTML page.

  gen report runs/abl        # a sweep (gen sweep) or a single run, with or without members

Writes into PATH:
  results.md / results.csv  one row per combination (the sweep's grid values and the members'
                            varied values): final and best value of each evaluation metric as
                            mean +- std over seeds, n (seeds), steps and training time; the best
                            mean of each metric column is marked (bold; `best` in the CSV)
  curves.png                each metric and loss against step: per combination the mean over
                            seeds and a +-std band
  report.html               one self-contained page (works offline): the config, the table,
                            the curves and the latest sample grids
Prints the markdown table.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import html
import json
import math
import os
import re
import sys

import numpy as np

from gen.errors import UserError
from gen.metrics import direction
from gen.train.members import parse_vary

_TIMING = ("steps_per_sec", "images_per_sec")


@dataclasses.dataclass
class Member:
  """One trained model: its rows in metrics.jsonl, split into training and evaluation."""
  run_dir: str
  index: int | None  # member index in its run (None: a run without members)
  seed: int
  train: list[dict]
  eval: list[dict]


@dataclasses.dataclass
class Combination:
  values: dict  # grid values of its run, then the members' varied values
  members: list[Member]
  seconds: float  # training time of its run(s)


def _rows(path: str) -> list[dict]:
  try:
    with open(path) as f:
      return [json.loads(line) for line in f if line.strip()]
  except (OSError, ValueError) as e:
    raise UserError(f"cannot read {path}: {e}") from None


def _config(run_dir: str) -> dict:
  try:
    with open(os.path.join(run_dir, "config.json")) as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}


def _train_seconds(rows: list[dict]) -> float:
  """Training time from the logged intervals (evaluation excluded): sum of steps / steps_per_sec."""
  total, last = 0.0, 0
  for r in rows:
    if r.get("steps_per_sec"):
      total += (r["step"] - last) / r["steps_per_sec"]
      last = r["step"]
  return total


def load_run(run_dir: str, grid_values: dict) -> list[Combination]:
  """A run's combinations: one per set of varied values (its members of other seeds pooled)."""
  config = _config(run_dir)
  prefix = config.get("eval", {}).get("split", "test") + "_"
  varied_names = [name for name, _ in parse_vary(config.get("vary", ""))]  # members' settings
  by_member: dict = {}
  for row in _rows(os.path.join(run_dir, "metrics.jsonl")):
    by_member.setdefault(row.get("member"), []).append(row)
  combos: dict = {}
  seconds = 0.0
  for index, rows in sorted(by_member.items(), key=lambda kv: -1 if kv[0] is None else kv[0]):
    varied = {k: rows[0][k] for k in varied_names if k in rows[0]}
    seed = rows[0].get("seed", config.get("seed", 0))
    train = [r for r in rows if not any(k.startswith(prefix) for k in r) and "dropped" not in r]
    evals = [r for r in rows if any(k.startswith(prefix) for k in r)]
    evals = [{"step": r["step"], **{k[len(prefix):]: v for k, v in r.items() if k.startswith(prefix)}}
             for r in evals]
    seconds = max(seconds, _train_seconds(train))
    key = json.dumps(varied, sort_keys=True)
    combos.setdefault(key, Combination({**grid_values, **varied}, [], 0.0)).members.append(
        Member(run_dir, index, seed, train, evals))
  for c in combos.values():
    c.seconds = seconds
  return list(combos.values())


def load(path: str) -> tuple[list[Combination], dict]:
  """(combinations, description) of a run or a sweep directory."""
  if not os.path.isdir(path):
    raise UserError(f"{path!r} is not a directory")
  if os.path.exists(os.path.join(path, "metrics.jsonl")):
    return load_run(path, {}), {"kind": "run", "config": _config(path)}
  sweep = os.path.join(path, "sweep.json")
  if os.path.exists(sweep):
    with open(sweep) as f:
      record = json.load(f)
    runs = [(os.path.join(path, r["dir"]), r["values"]) for r in record["runs"]]
  else:  # a folder of runs: each sub-directory's name says what it is
    runs = [(os.path.join(path, d), {"run": d}) for d in sorted(os.listdir(path))]
    record = {}
  found = [(d, v) for d, v in runs if os.path.exists(os.path.join(d, "metrics.jsonl"))]
  if not found:
    raise UserError(f"{path!r} holds no run: no metrics.jsonl in it or its sub-directories")
  combos = [c for d, v in found for c in load_run(d, v)]
  found_dirs = {d for d, _ in found}
  return combos, {"kind": "sweep", "sweep": record, "config": _config(found[0][0]),
                  "missing": [d for d, _ in runs if d not in found_dirs]}


# -- the table ---------------------------------------------------------------------


def _mean_std(xs: list[float]) -> tuple[float, float, int]:
  xs = [x for x in xs if x is not None and math.isfinite(x)]
  if not xs:
    return math.nan, math.nan, 0
  return float(np.mean(xs)), float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0, len(xs)


def table(combos: list[Combination]) -> tuple[list[str], list[dict], dict]:
  """(columns, rows, best): rows hold (mean, std) per metric column; best[column] = row index."""
  eval_names = sorted({k for c in combos for m in c.members for r in m.eval for k in r
                       if "_std" not in k} - {"step"})  # (KID's own spread is in curves.png)
  train_names = sorted({k for c in combos for m in c.members for r in m.train for k in r}
                       - {"step", "member", "seed", *_TIMING}
                       - {k for c in combos for k in c.values})
  setting_names = list(dict.fromkeys(k for c in combos for k in c.values))
  metric_cols = ([f"final {n}" for n in eval_names] + [f"best {n}" for n in eval_names
                                                        if direction(n)]
                 if eval_names else [f"final {n}" for n in train_names])
  rows = []
  for c in combos:
    row = {k: c.values.get(k, "") for k in setting_names}
    row["n"] = len(c.members)
    row["steps"] = max((m.train[-1]["step"] for m in c.members if m.train), default=0)
    row["train time (s)"] = round(c.seconds)
    for col in metric_cols:
      kind, name = col.split(" ", 1)
      per_seed = []
      for m in c.members:
        series = [r[name] for r in (m.eval if eval_names else m.train) if r.get(name) is not None]
        if not series:
          continue
        if kind == "final":
          per_seed.append(series[-1])
        else:
          per_seed.append(min(series) if direction(name) == "min" else max(series))
      row[col] = _mean_std(per_seed)
    rows.append(row)
  best = {}
  for col in metric_cols:
    name = col.split(" ", 1)[1]
    way = direction(name) if eval_names else None
    means = [r[col][0] for r in rows]
    if way and len(rows) > 1 and any(math.isfinite(m) for m in means):
      pick = np.nanargmin if way == "min" else np.nanargmax
      best[col] = int(pick(np.asarray(means, np.float64)))
  return setting_names + ["n", "steps", "train time (s)"] + metric_cols, rows, best


def _fmt(v) -> str:
  if isinstance(v, tuple):
    mean, std, n = v
    if not n:
      return "-"
    return f"{mean:.4g} ± {std:.2g}" if n > 1 else f"{mean:.4g}"
  return str(v)


def markdown(columns, rows, best) -> str:
  lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
  for i, r in enumerate(rows):
    cells = [(f"**{_fmt(r[c])}**" if best.get(c) == i else _fmt(r[c])) for c in columns]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def write_csv(path: str, columns, rows, best) -> None:
  header = []
  for c in columns:
    header += [f"{c} mean", f"{c} std"] if isinstance(rows[0][c], tuple) else [c]
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(header + ["n per column", "best"])
    for i, r in enumerate(rows):
      cells, counts = [], []
      for c in columns:
        if isinstance(r[c], tuple):
          cells += [r[c][0], r[c][1]]
          counts.append(r[c][2])
        else:
          cells.append(r[c])
      w.writerow(cells + [" ".join(map(str, counts)), ";".join(c for c, j in best.items() if j == i)])


# -- the plots ---------------------------------------------------------------------


def _label(c: Combination) -> str:
  return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in c.values.items()) or "run"


def curves(combos: list[Combination], path: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  panels = []
  for source in ("eval", "train"):
    names = sorted({k for c in combos for m in c.members for r in getattr(m, source) for k in r}
                   - {"step", "member", "seed", *_TIMING} - {k for c in combos for k in c.values})
    panels += [(source, n) for n in names if "_std" not in n]
  cols = min(3, max(1, len(panels)))
  rows = max(1, math.ceil(len(panels) / cols))
  fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.4 * rows), squeeze=False)
  for ax, (source, name) in zip(axes.flat, panels):
    for i, c in enumerate(combos):
      by_step: dict = {}
      for m in c.members:
        for r in getattr(m, source):
          if isinstance(r.get(name), (int, float)) and math.isfinite(r[name]):
            by_step.setdefault(r["step"], []).append(r[name])
      if not by_step:
        continue
      steps = np.asarray(sorted(by_step))
      mean = np.asarray([np.mean(by_step[s]) for s in steps])
      std = np.asarray([np.std(by_step[s]) for s in steps])
      color = f"C{i % 10}"
      ax.plot(steps, mean, color=color, label=_label(c), marker="o" if source == "eval" else None,
              markersize=3)
      ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
      if source == "eval":  # few points: also as error bars (a band needs two)
        ax.errorbar(steps, mean, yerr=std, color=color, fmt="none", capsize=3)
    ax.set_title(("eval " if source == "eval" else "") + name, fontsize=10)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
  for ax in list(axes.flat)[len(panels):]:
    ax.axis("off")
  handles, labels = axes.flat[0].get_legend_handles_labels()
  if handles:
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=9,
               bbox_to_anchor=(0.5, 0.0))
  fig.suptitle("mean over seeds, band: +-1 std", fontsize=10)
  fig.tight_layout(rect=(0, 0.06 if handles else 0, 1, 0.97))
  fig.savefig(path, dpi=90)
  plt.close(fig)


# -- the page ----------------------------------------------------------------------


def _latest_samples(m: Member) -> dict[str, str]:
  """{picture name: newest PNG path} of one member."""
  folder = os.path.join(m.run_dir, "samples")
  if m.index is not None:
    folder = os.path.join(folder, f"member_{m.index:02d}")
  found: dict = {}
  if os.path.isdir(folder):
    for f in sorted(os.listdir(folder)):
      match = re.fullmatch(r"(.+)_(\d+)\.png", f)
      if match:
        found[match.group(1)] = os.path.join(folder, f)  # sorted: the newest step wins
  return found


def _img(path: str) -> str:
  with open(path, "rb") as f:
    data = base64.b64encode(f.read()).decode()
  return f'<img src="data:image/png;base64,{data}" style="image-rendering:pixelated;width:220px">'


def page(path: str, title: str, description: dict, md_columns, rows, best, combos) -> None:
  e = html.escape
  head = "".join(f"<th>{e(c)}</th>" for c in md_columns)
  body = "".join(
      "<tr>" + "".join(f"<td>{'<b>' if best.get(c) == i else ''}{e(_fmt(r[c]))}"
                       f"{'</b>' if best.get(c) == i else ''}</td>" for c in md_columns) + "</tr>"
      for i, r in enumerate(rows))
  with open(os.path.join(path, "curves.png"), "rb") as f:
    curves_png = base64.b64encode(f.read()).decode()
  samples = []
  for c in combos:
    m = c.members[0]
    pictures = _latest_samples(m)
    if pictures:
      samples.append(f"<h3>{e(_label(c))} <small>(seed {m.seed})</small></h3>"
                     + "".join(f"<figure style='display:inline-block'>{_img(p)}"
                               f"<figcaption>{e(os.path.basename(p))}</figcaption></figure>"
                               for p in pictures.values()))
  sweep = description.get("sweep") or {}
  sweep_line = (f"<p>sweep: <code>{e(' '.join(sweep.get('config', [])))}</code>, grid "
                f"<code>{e(json.dumps(sweep.get('grid')))}</code></p>" if sweep else "")
  doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>{e(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1400px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}pre{{background:#f6f6f6;padding:1em;
max-height:30em;overflow:auto}}</style></head><body>
<h1>{e(title)}</h1>
{sweep_line}
<h2>Results</h2><p>mean ± std over seeds; bold: the best mean of its column.</p>
<table><tr>{head}</tr>{body}</table>
<h2>Curves</h2><img src="data:image/png;base64,{curves_png}" style="max-width:100%">
<h2>Latest samples</h2>{''.join(samples) or '<p>none</p>'}
<h2>Config</h2><pre>{e(json.dumps(description.get('config', {}), indent=2, sort_keys=True))}</pre>
</body></html>"""
  with open(os.path.join(path, "report.html"), "w") as f:
    f.write(doc)


def report(path: str) -> str:
  """Writes results.md, results.csv, curves.png and report.html into `path`; returns the table."""
  combos, description = load(path)
  columns, rows, best = table(combos)
  text = markdown(columns, rows, best)
  with open(os.path.join(path, "results.md"), "w") as f:
    f.write(f"# {os.path.basename(os.path.abspath(path))}\n\nmean ± std over seeds (n); "
            f"bold: the best mean of its column.\n\n{text}\n![curves](curves.png)\n")
  write_csv(os.path.join(path, "results.csv"), columns, rows, best)
  curves(combos, os.path.join(path, "curves.png"))
  page(path, os.path.basename(os.path.abspath(path)), description, columns, rows, best, combos)
  for missing in description.get("missing", []):
    print(f"not started yet (no metrics.jsonl): {missing}", file=sys.stderr)
  return text


def main(args: list[str]) -> None:
  if len(args) != 1:
    raise UserError("usage: gen report PATH (a run or a sweep directory)")
  print(report(args[0]), end="")


def cli() -> None:
  from gen.tools import runner
  runner.run(main, takes_args=True, processes=False)


if __name__ == "__main__":
  cli()
