"""The exported training script: template.SCRIPT filled in from a run's config and its
live changes. Each *_source function writes one part of the script as source text."""
from __future__ import annotations

import inspect
import pprint
import textwrap

import torch

from .. import datasets, masks, regression_data
from ..activations import ACTIVATIONS
from ..config import PLANE, RunConfig
from ..engine.mc import PASS_SALT
from ..layers import SELU_ALPHA_PRIME
from ..network import block_order
from .template import CLASSIFY_MC, DIGITS_SOURCE, DRIFT_NOTE, OPTIMIZERS, REGRESSION_MC, SCRIPT


def script(cfg: RunConfig, steps: int = 2000, filename: str = "dropout_net.py", changes=()) -> str:
    """A standalone training script for cfg (it trains `steps` steps unless told
    otherwise), replaying `changes` (a run's settings_log: (first step, p, lr, mode))."""
    return SCRIPT.format(**_summary(cfg), **_data(cfg), **_model(cfg), steps=steps, filename=filename,
                         schedule=schedule_source(cfg, changes), masks=masks_source(),
                         selu_alpha_prime=SELU_ALPHA_PRIME)


def _summary(cfg: RunConfig) -> dict:
    """The script's docstring and constants: what was trained, and how."""
    d, m, t = cfg.data, cfg.model, cfg.train
    custom = d.dataset == "custom"
    # a custom set's points are written once, as POINTS; n_points and noise do not apply
    dump = cfg.model_dump(exclude={"data": {"points", "n_points", "noise"}} if custom else None)
    config = pprint.pformat(dump, indent=1, width=100, sort_dicts=False)
    retrace = (", and its live changes (SCHEDULE: p, learning rate, train/eval mode) at the same steps,"
               " so on a CPU this retraces the playground's run from its step 0")
    if cfg.task == "digits":
        data_line = d.dataset
    elif cfg.task == "regression" and custom:
        data_line = f"regression, custom, {len(d.points)} points (POINTS, below)"
    elif custom:
        data_line = f"custom, {len(d.points)} points (POINTS, below)"
    else:
        data_line = f"{d.dataset}, {d.n_points} points, noise {d.noise:g}"
    needs = "torch, numpy" + (", scikit-learn" if d.dataset in ("circle", "moons", "gauss", "digits") else "")
    return dict(
        activation=m.activation, placement=m.placement.replace("_", " "),
        batchnorm=m.batchnorm.replace("_", " "), data_line=data_line, train_fraction=d.train_fraction,
        seed=d.seed, optimizer=t.optimizer, lr=t.lr, weight_decay=t.weight_decay, batch_size=t.batch_size,
        retrace=retrace, drift="\n\n" + DRIFT_NOTE if m.kind == "cnn" or m.batchnorm != "none" else "",
        needs=needs, config=textwrap.indent(config, " " * 9).lstrip(), eval_every=t.eval_every or 100,
        optimizer_line=OPTIMIZERS[t.optimizer])


def _data(cfg: RunConfig) -> dict:
    """points() and the data's constants, and how labels become tensors."""
    d, digits = cfg.data, cfg.task == "digits"
    custom = d.dataset == "custom"
    if cfg.task == "regression":
        data_source = regression_source(cfg)
    else:
        data_source = DIGITS_SOURCE if digits else custom_source(cfg) if custom else points_source(d.dataset)
    return dict(
        data_source=data_source, y_cast="y" if digits else "y.astype(np.float32)",
        generated="" if digits or custom else f"N_POINTS = {d.n_points}\nNOISE = {d.noise!r}\n")


def _model(cfg: RunConfig) -> dict:
    """Net's layers and head, its loss, and how logits become answers."""
    m, digits, regression = cfg.model, cfg.task == "digits", cfg.task == "regression"
    input_shape = (1, 8, 8) if digits else (1,) if regression else (2,)
    n_out = 10 if digits else 1
    blocks, head = blocks_source(cfg, input_shape)
    arch = " -> ".join(
        [f"input {'1x8x8' if digits else input_shape[0]}"]
        + [f"{'conv' if m.kind == 'cnn' else 'linear'} {w} (p={p:g})" for w, p in zip(m.hidden, m.p)]
        + ["1 output (linear)" if regression else f"{n_out} logit{'s' if n_out > 1 else ''}"])
    kinds = "nn.Dropout2d" if m.dropout_kind == "dropout2d" and m.kind == "cnn" else (
        "nn.AlphaDropout" if m.dropout_kind == "alpha" else "nn.Dropout")
    return dict(
        arch=arch, kinds=kinds, blocks=textwrap.indent("\n".join(blocks), " " * 12),
        head=head.format(n_out=n_out),
        flatten="x = x.flatten(1)  # the MLP sees an image as 64 numbers\n        " if digits and m.kind == "mlp" else "",
        squeeze="" if digits else ".squeeze(-1)  # one logit per example",
        **(_regression_head() if regression else dict(
            loss="F.cross_entropy(logits, y)" if digits else "F.binary_cross_entropy_with_logits(logits, y)",
            hits="logits.argmax(1) == y" if digits else "(logits > 0).float() == y",
            probs="logits.softmax(-1)" if digits else "torch.sigmoid(logits)",
            metric="test accuracy {acc:.1%}", outputs="probabilities", mc_predict=CLASSIFY_MC)))


def _regression_head() -> dict:
    """A regression's loss (mean squared error on the linear output), its second metric
    (evaluate's: the mean absolute error) and its mc_predict, the page's passes."""
    return dict(loss="F.mse_loss(logits, y)", hits="(logits - y).abs()", probs="logits",
                metric="test mean absolute error {acc:.4f}", outputs="values",
                mc_predict=REGRESSION_MC.format(pass_salt=PASS_SALT))


def regression_source(cfg: RunConfig) -> str:
    """points() of a regression set, as model_server.regression_data makes it."""
    d = cfg.data
    if d.dataset == "custom":
        rows = [f"[{p.x!r}, {p.y!r}]," for p in d.points]
        lines = "\n".join("    " + " ".join(rows[i:i + 6]) for i in range(0, len(rows), 6))
        draw = "rows = np.asarray(POINTS, dtype=np.float64)\n    x, y = rows[:, 0], rows[:, 1]"
        head = f"# the playground's points, drawn or uploaded: x, y (inside the plane)\nPOINTS = [\n{lines}\n]\n\n\n"
    else:
        fn = regression_data.SETS[d.dataset]
        consts = "\n".join(f"{name} = {getattr(regression_data, name)!r}" for name in ("DATA_X", "GAP", "OUTLIERS"))
        head = consts + "\n\n\n" + inspect.getsource(fn) + "\n\n"
        draw = f"x, y = {fn.__name__}(N_POINTS, NOISE, np.random.default_rng(SEED))"
    return head + (f'def points():\n    """{d.dataset}: x (N, 1), targets y clipped into the plane."""\n    {draw}\n'
                   f"    y = np.clip(y, {PLANE[0]!r}, {PLANE[1]!r})\n"
                   "    return x.astype(np.float32).reshape(-1, 1), y.astype(np.float32)\n")


def points_source(dataset: str) -> str:
    """The body of points(): the 2D set exactly as model_server.datasets draws it."""
    calls = {
        "circle": "x, y = make_circles(N_POINTS, noise=NOISE, factor=0.5, random_state=SEED)",
        "moons": "x, y = make_moons(N_POINTS, noise=NOISE, random_state=SEED)",
        "gauss": "x, y = make_blobs(N_POINTS, centers=[(-1, -1), (1, 1)], cluster_std=0.4 + 2 * NOISE, random_state=SEED)",
        "xor": "x, y = _xor(N_POINTS, NOISE, np.random.default_rng(SEED))",
        "spiral": "x, y = _spiral(N_POINTS, NOISE, np.random.default_rng(SEED))",
    }
    helper = ""
    if dataset in ("xor", "spiral"):
        helper = inspect.getsource(getattr(datasets, f"_{dataset}")) + "\n\n"
    imports = {"circle": "make_circles", "moons": "make_moons", "gauss": "make_blobs"}
    sk = f"from sklearn.datasets import {imports[dataset]}\n\n\n" if dataset in imports else ""
    return sk + helper + textwrap.dedent(f'''\
        def points():
            """{dataset}: 2D points scaled into [-1, 1], labels 0/1."""
            {calls[dataset]}
            x = x - x.mean(axis=0)
            x = x / (np.abs(x).max() + 1e-9)  # into [-1, 1]
            return x.astype(np.float32), y
        ''')


def custom_source(cfg: RunConfig) -> str:
    """POINTS (the visitor's own set, as sent) and the body of points() that reads it as
    model_server.datasets.custom_points does."""
    rows = [f"[{p.x!r}, {p.y!r}, {p.label}]," for p in cfg.data.points]
    lines = "\n".join("    " + " ".join(rows[i:i + 4]) for i in range(0, len(rows), 4))
    return f'''\
# the playground's points, drawn or uploaded: x, y (inside the plane [-1.5, 1.5]), label
POINTS = [
{lines}
]


def points():
    """custom: the {len(rows)} points as they came, labels 0/1."""
    rows = np.asarray(POINTS, dtype=np.float32)
    return rows[:, :2].copy(), rows[:, 2].astype(np.int64)
'''


def blocks_source(cfg: RunConfig, input_shape: tuple[int, ...]) -> tuple[list[str], str]:
    """One nn.Sequential line per hidden block (the order of network.Block), and the head
    (with {n_out} left to fill)."""
    m = cfg.model
    cnn = m.kind == "cnn"
    c_in = input_shape[0] if cnn else int(torch.Size(input_shape).numel())
    lines = []
    for width, p in zip(m.hidden, m.p):
        layer = f"nn.Conv2d({c_in}, {width}, 3, padding=1)" if cnn else f"nn.Linear({c_in}, {width})"
        bn = f"nn.BatchNorm2d({width})" if cnn else f"nn.BatchNorm1d({width})"
        if m.dropout_kind == "alpha":
            drop = f"nn.AlphaDropout(p={p!r})"
        elif m.dropout_kind == "dropout2d" and cnn:
            drop = f"nn.Dropout2d(p={p!r})"
        else:  # Dropout2d on (N, features) drops single features: that is nn.Dropout
            drop = f"nn.Dropout(p={p!r})"
        parts = {"act": ACTIVATIONS[m.activation].source, "drop": drop, "bn": bn}
        middle = [parts[name] for name in block_order(m)]
        lines.append(f"nn.Sequential({', '.join([layer, *middle])}),")
        c_in = width
    flat = c_in * int(torch.Size(input_shape[1:]).numel()) if cnn else c_in
    return lines, f"nn.Linear({flat}, {{n_out}})"


def masks_source() -> str:
    """The playground's mask counter (model_server.masks), as the script's own code."""
    constants = "\n".join(f"{name} = {getattr(masks, name)!r}" for name in
                          ("MASK32", "STEP", "PLACE", "ROUNDS", "FINAL_SHIFT"))
    functions = [masks.mix, masks.run_key, masks.step_bits, masks.places, masks.unit_bits, masks.keep_threshold]
    return constants + "\n\n\n" + "\n\n".join(inspect.getsource(f) for f in functions)


def schedule_source(cfg: RunConfig, changes) -> str:
    """SCHEDULE: the run's settings from each step on where they changed (live changes of
    p, learning rate and mode), one entry per line; the config's own when none."""
    rows = changes or [(1, cfg.model.p, cfg.train.lr, "train")]
    lines = "\n".join(f"    ({first}, {list(p)!r}, {lr!r}, {mode!r})," for first, p, lr, mode in rows)
    return f"SCHEDULE = [\n{lines}\n]"
