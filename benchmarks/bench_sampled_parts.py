"""Where a sampled-softmax train step spends its time, part by part.

    .venv/bin/python -m benchmarks.bench_sampled_parts [--quick]
        [--vocab 200000] [--dim 256] [--batch 128] [--num-sampled 1000]
        [--repeats 30]

``bench_sampled_train_step`` times whole steps; this times their parts at the
same sizes, each as its own ``tf.function`` called from Python, interleaved
in a fresh random order every round, medians printed:

- an empty compiled function (the fixed cost of one call and one result);
- the log-uniform sampler alone (``lossviz.sampled``'s stateless one) and
  TensorFlow's ``tf.random.log_uniform_candidate_sampler`` beside it;
- the sampled loss's forward and backward pass with fixed candidates (no
  sampler), and the same with the sampler;
- two matrix products of the sizes the pass needs (logits ``[B, S]`` and the
  weight gradient ``[S, D]``): the arithmetic floor of the pass;
- ``LazyAdam``'s sparse update alone, on a fixed ``tf.IndexedSlices``
  gradient of ``B + S`` rows, and its pieces: ``tf.unique`` with the
  segment sum of duplicate rows, the two row gathers of the moments, the
  three row scatters;
- the whole step (sampler, pass and update).
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np

from benchmarks.bench_sampled_train_step import parse_sizes, size_parser
from lossviz._tf import tf
from lossviz.optimizers import LazyAdam
from lossviz.sampled import log_uniform_candidate_sampler, sampled_softmax_loss

QUICK = dict(vocab=20_000, dim=64, batch=32, num_sampled=200, repeats=5)


def parse_args() -> argparse.Namespace:
    parser = size_parser(__doc__.splitlines()[0], QUICK, repeats=30)
    return parse_sizes(parser, QUICK)


def parts(args) -> dict[str, object]:
    """The compiled functions to time, by row label."""
    vocab, dim, batch, num_sampled = args.vocab, args.dim, args.batch, args.num_sampled
    rng = np.random.default_rng(args.seed)
    inputs = tf.constant(rng.normal(size=(batch, dim)), tf.float32)
    labels = tf.constant(rng.integers(0, vocab, size=batch), tf.int64)
    init = rng.normal(scale=dim**-0.5, size=(vocab, dim)).astype(np.float32)
    kernel = keras.Variable(init, name="kernel")
    bias = keras.Variable(np.zeros(vocab, np.float32), name="bias")
    optimizer = LazyAdam()
    optimizer.build([kernel, bias])
    fixed = tf.random.log_uniform_candidate_sampler(
        labels[:, None], 1, num_sampled, True, vocab, seed=args.seed
    )
    rows = batch + num_sampled
    # Distinct rows spread over the matrix, as a sampled gradient's are.
    row_ids = tf.constant(
        rng.choice(vocab, size=rows, replace=False).astype(np.int64), tf.int64
    )
    kernel_grad = tf.IndexedSlices(
        tf.constant(rng.normal(size=(rows, dim)), tf.float32),
        row_ids,
        tf.constant([vocab, dim], tf.int64),
    )
    bias_grad = tf.IndexedSlices(
        tf.constant(rng.normal(size=rows), tf.float32),
        row_ids,
        tf.constant([vocab], tf.int64),
    )
    sampled_rows = tf.constant(rng.normal(size=(num_sampled, dim)), tf.float32)
    moment = optimizer._momentums[0].value
    velocity = optimizer._velocities[0].value

    def loss_and_grads(sampled_values=None):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(
                sampled_softmax_loss(
                    kernel, bias, labels, inputs, num_sampled,
                    sampled_values=sampled_values, seed=args.seed,
                )
            )  # fmt: skip
        grads = tape.gradient(loss, [kernel, bias])
        return loss, grads

    @tf.function
    def empty():
        return tf.constant(0.0)

    @tf.function
    def sampler():
        return log_uniform_candidate_sampler(
            labels[:, None], num_sampled, vocab, seed=args.seed
        )[0]

    @tf.function
    def tf_sampler():
        return tf.random.log_uniform_candidate_sampler(
            labels[:, None], 1, num_sampled, True, vocab, seed=args.seed
        )[0]

    @tf.function
    def pass_fixed():
        loss, grads = loss_and_grads(fixed)
        return loss, [g.values for g in grads]

    @tf.function
    def pass_sampled():
        loss, grads = loss_and_grads()
        return loss, [g.values for g in grads]

    @tf.function
    def matmuls():
        logits = tf.matmul(inputs, sampled_rows, transpose_b=True)
        return tf.matmul(logits, inputs, transpose_a=True)

    @tf.function
    def update():
        optimizer.apply_gradients([(kernel_grad, kernel), (bias_grad, bias)])
        return tf.constant(0.0)

    @tf.function
    def unique_and_sum():
        unique, positions = tf.unique(kernel_grad.indices)
        return tf.math.unsorted_segment_sum(
            kernel_grad.values, positions, tf.shape(unique)[0]
        )

    @tf.function
    def row_gathers():
        return tf.gather(moment, row_ids) + tf.gather(velocity, row_ids)

    scratch = [tf.Variable(tf.zeros([vocab, dim])) for _ in range(3)]

    @tf.function
    def row_scatters():
        for variable in scratch:
            variable.scatter_update(tf.IndexedSlices(kernel_grad.values, row_ids))
        return tf.constant(0.0)

    @tf.function
    def whole_step():
        loss, grads = loss_and_grads()
        optimizer.apply_gradients(zip(grads, [kernel, bias], strict=True))
        return loss

    return {
        "empty compiled function": empty,
        "sampler (lossviz, stateless)": sampler,
        "sampler (tf.random, stateful op)": tf_sampler,
        "forward+backward, fixed candidates": pass_fixed,
        "forward+backward, with the sampler": pass_sampled,
        "  two matrix products of its sizes": matmuls,
        "LazyAdam update (kernel and bias)": update,
        "  tf.unique + segment sum": unique_and_sum,
        "  two row gathers (m, v)": row_gathers,
        "  three row scatters": row_scatters,
        "whole step (sampler, pass, LazyAdam)": whole_step,
    }


def main() -> None:
    args = parse_args()
    tf.get_logger().setLevel("ERROR")
    functions = parts(args)
    rng = np.random.default_rng(args.seed)

    def call(fn):
        for t in tf.nest.flatten(fn()):
            t.numpy()

    for fn in functions.values():  # trace and warm up
        for _ in range(3):
            call(fn)
    names = list(functions)
    times = {name: [] for name in names}
    for _ in range(args.repeats):
        for name in (names[i] for i in rng.permutation(len(names))):
            start = time.perf_counter()
            call(functions[name])
            times[name].append(time.perf_counter() - start)
    medians = {name: float(np.median(t)) * 1e3 for name, t in times.items()}
    floor = medians["empty compiled function"]
    print(
        f"Parts of a sampled train step, vocab {args.vocab:,}, dim {args.dim}, "
        f"batch {args.batch}, num_sampled {args.num_sampled}; median of "
        f"{args.repeats} calls each, interleaved. TensorFlow {tf.__version__}."
    )
    header = f"{'part':<40}{'median ms':>10}{'minus empty call':>18}"
    print(header)
    print("-" * len(header))
    for name, ms in medians.items():
        print(f"{name:<40}{ms:>10.2f}{ms - floor:>18.2f}")


if __name__ == "__main__":
    main()
