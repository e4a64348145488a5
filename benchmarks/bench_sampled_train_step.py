"""A whole train step: full vs sampled softmax, with Adam, LazyAdam and SGD.

    .venv/bin/python -m benchmarks.bench_sampled_train_step [--quick]
        [--vocab 200000] [--dim 256] [--batch 128] [--num-sampled 1000]
        [--repeats 20] [--warmup 5]

The sampled loss computes its forward and backward pass over ``batch +
num_sampled`` rows of the ``[vocab, dim]`` output matrix instead of all of
them, and its gradient is a ``tf.IndexedSlices`` over those rows. Whether a
whole train step keeps that saving depends on the optimizer: Keras' ``Adam``
makes the update dense (it reads and writes every row of the weights and of
both moments), ``SGD`` and ``lossviz.optimizers.LazyAdam`` update the touched
rows only. Rows of the table:

  (a) full softmax + Adam         (b) sampled + Adam
  (c) sampled + LazyAdam          (d) sampled + SGD
  (e) full softmax, forward+backward only
  (f) sampled, forward+backward only
  (g) full softmax + Adam, XLA    (h) sampled + LazyAdam, XLA

Every step is a ``tf.function`` over a kernel variable ``[vocab, dim]`` and a
bias ``[vocab]`` (one pair per optimizer, so optimizers do not share
weights; the two rows without an update share one pair) and a fixed random
input batch; the losses gather from the variable itself, so no step copies
the whole matrix unless its maths needs it.

Steps are timed interleaved, every row once per round in a fresh random order,
so that load on a shared machine hits all rows alike and no row always runs
right after a heavy one (a step that follows a dense [vocab, dim] update
starts with cold caches; with a fixed cyclic order that cost fell on the same
rows every round). Warm-up rounds come first and also trace the functions;
the table shows medians, the 10th-90th percentile range, and ratios.
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np

from lossviz._tf import tf
from lossviz.optimizers import LazyAdam
from lossviz.sampled import full_softmax_loss, sampled_softmax_loss

QUICK = dict(vocab=20_000, dim=64, batch=32, num_sampled=200, repeats=5, warmup=2)


def size_parser(
    description: str, quick: dict, repeats: int
) -> argparse.ArgumentParser:
    """The sizes of the issue's train step (V, D, B, S), a seed, ``--repeats``
    and ``--quick`` (``quick``'s small sizes, for a smoke run)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--vocab", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--num-sampled", type=int, default=1000)
    parser.add_argument(
        "--repeats", type=int, default=repeats, help="timed calls per row"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes for a smoke run: "
        + ", ".join(f"{k}={v}" for k, v in quick.items()),
    )
    return parser


def parse_sizes(parser: argparse.ArgumentParser, quick: dict) -> argparse.Namespace:
    args = parser.parse_args()
    if args.quick:
        for key, value in quick.items():
            setattr(args, key, value)
    return args


def parse_args() -> argparse.Namespace:
    parser = size_parser(__doc__.splitlines()[0], QUICK, repeats=20)
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per row")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    return parse_sizes(parser, QUICK)


def make_train_step(loss_fn, optimizer, kernel, bias, labels, inputs, jit=False):
    """A compiled step: mean loss, gradients, and (with an optimizer) the update.

    Returns the loss and whether the kernel's gradient reached the optimizer
    as a ``tf.IndexedSlices``.
    """
    is_sparse = {}

    @tf.function(jit_compile=jit)
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(loss_fn(kernel, bias, labels, inputs))
        grads = tape.gradient(loss, [kernel, bias])
        is_sparse["kernel"] = isinstance(grads[0], tf.IndexedSlices)
        if optimizer is None:
            # Return the gradients so that the backward pass is not pruned.
            values = [g.values if isinstance(g, tf.IndexedSlices) else g for g in grads]
            return loss, values
        optimizer.apply_gradients(zip(grads, [kernel, bias], strict=True))
        return loss, []

    return step, is_sparse


def main() -> None:
    args = parse_args()
    # TensorFlow warns that "N out of the last N calls triggered retracing"
    # when several functions are built from one definition, as here; each is
    # traced once (checked below), so the warning is only noise.
    tf.get_logger().setLevel("ERROR")
    rng = np.random.default_rng(args.seed)
    tf.random.set_seed(args.seed)
    inputs = tf.constant(rng.normal(size=(args.batch, args.dim)), tf.float32)
    labels = tf.constant(rng.integers(0, args.vocab, size=args.batch), tf.int64)
    init = rng.normal(scale=args.dim**-0.5, size=(args.vocab, args.dim))
    init = init.astype(np.float32)

    def full(kernel, bias, labels, inputs):
        return full_softmax_loss(kernel, bias, labels, inputs)

    def sampled(kernel, bias, labels, inputs):
        return sampled_softmax_loss(kernel, bias, labels, inputs, args.num_sampled)

    lr = args.learning_rate
    rows = [
        ("a", "full softmax + Adam", full, keras.optimizers.Adam(lr)),
        ("b", "sampled + Adam", sampled, keras.optimizers.Adam(lr)),
        ("c", "sampled + LazyAdam", sampled, LazyAdam(lr)),
        ("d", "sampled + SGD", sampled, keras.optimizers.SGD(lr)),
        ("e", "full softmax, fwd+bwd only", full, None),
        ("f", "sampled, fwd+bwd only", sampled, None),
        ("g", "full softmax + Adam, XLA", full, keras.optimizers.Adam(lr)),
        ("h", "sampled + LazyAdam, XLA", sampled, LazyAdam(lr)),
    ]
    steps, sparse = {}, {}
    for key, _, loss_fn, optimizer in rows:
        if optimizer is not None or key == "e":
            kernel = keras.Variable(init, name=f"kernel_{key}")
            bias = keras.Variable(np.zeros(args.vocab, np.float32), name=f"bias_{key}")
        # (f) reads the pair of (e): neither changes it.
        if optimizer is not None:
            # Slots made now, not in the first call (which would trace twice).
            optimizer.build([kernel, bias])
        steps[key], sparse[key] = make_train_step(
            loss_fn, optimizer, kernel, bias, labels, inputs, jit=key in "gh"
        )

    print(
        f"Train step, vocab {args.vocab:,}, dim {args.dim}, batch {args.batch}, "
        f"num_sampled {args.num_sampled}; {args.warmup} warm-up + {args.repeats} "
        f"timed steps per row, interleaved. TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}.",
        flush=True,
    )
    order = list(steps)
    times = {key: [] for key in order}
    losses = {key: [] for key in order}
    for round_index in range(args.warmup + args.repeats):
        for key in (order[i] for i in rng.permutation(len(order))):
            start = time.perf_counter()
            loss, _ = steps[key]()
            loss = float(loss.numpy())
            elapsed = time.perf_counter() - start
            if round_index >= args.warmup:
                times[key].append(elapsed)
            losses[key].append(loss)

    for key, step in steps.items():
        traces = step.experimental_get_tracing_count()
        if traces != 1:
            raise RuntimeError(f"step ({key}) was traced {traces} times, not once")
    medians = {key: float(np.median(t)) for key, t in times.items()}
    header = (
        f"{'':3}{'step':<30}{'kernel grad':>13}{'median ms':>11}"
        f"{'p10-p90 ms':>17}{'vs (a)':>9}{'first/last loss':>19}"
    )
    print(header)
    print("-" * len(header))
    for key, label, _, _ in rows:
        p10, p90 = np.percentile(times[key], [10, 90]) * 1e3
        grad_kind = "sparse" if sparse[key].get("kernel") else "dense"
        print(
            f"({key}){label:<30}{grad_kind:>13}{medians[key] * 1e3:>11.2f}"
            f"{f'{p10:.1f}-{p90:.1f}':>17}{medians['a'] / medians[key]:>8.1f}x"
            f"{f'{losses[key][0]:.3f}/{losses[key][-1]:.3f}':>19}"
        )
    print()
    print(
        "forward+backward, full / sampled (e/f): "
        f"{medians['e'] / medians['f']:.1f}x\n"
        "whole step, full+Adam / sampled+Adam (a/b): "
        f"{medians['a'] / medians['b']:.1f}x\n"
        "whole step, full+Adam / sampled+LazyAdam (a/c): "
        f"{medians['a'] / medians['c']:.1f}x  (target >= 120x at the default sizes)\n"
        "whole step, full+Adam / sampled+SGD (a/d): "
        f"{medians['a'] / medians['d']:.1f}x\n"
        "sampled step, Adam / LazyAdam (b/c): "
        f"{medians['b'] / medians['c']:.1f}x\n"
        "under XLA, full+Adam / sampled+LazyAdam (g/h): "
        f"{medians['g'] / medians['h']:.1f}x\n"
        "each at its fastest, full+Adam / sampled+LazyAdam: "
        f"{min(medians['a'], medians['g']) / min(medians['c'], medians['h']):.1f}x"
    )


if __name__ == "__main__":
    main()
