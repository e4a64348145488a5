"""The shared train loop, on a task defined here: linear regression."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from lossviz._tf import tf
from lossviz.training import core


def _regression(ctx: core.RunContext) -> None:
    data = core.rng(ctx.seed)
    x = data.normal(size=(256, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
    with ctx.strategy.scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(ctx.learning_rate), loss="mse")
    model.fit(
        x, y, epochs=ctx.epochs, batch_size=32, verbose=0, callbacks=ctx.callbacks
    )
    kernel = model.layers[0].kernel
    ctx.result.summary["kernel device"] = kernel.value.device
    ctx.result.rows.extend({"weight": float(w)} for w in kernel.numpy().ravel())


core.register_task(core.Task("regression", "Linear regression", ("mse",), _regression))
GPUS = tf.config.list_logical_devices("GPU")


@pytest.mark.skipif(not GPUS, reason="no GPU on this machine: placement not checked")
def test_a_run_trains_on_the_gpu_when_there_is_one():
    result = core.train("regression", "mse", epochs=1, learning_rate=0.1)
    assert "GPU" in result.device
    assert "GPU" in result.summary["kernel device"].upper()


def test_train_reports_every_epoch_and_lowers_the_loss():
    seen = []
    result = core.train(
        "regression",
        "mse",
        epochs=4,
        learning_rate=0.1,
        on_epoch=lambda r: seen.append(len(r.epochs)),
    )
    assert seen == [1, 2, 3, 4]
    assert result.epochs == [1, 2, 3, 4]
    assert len(result.epoch_seconds) == 4
    loss = result.history["loss"]
    assert loss[-1] < 0.1 * loss[0]
    assert result.device == ("GPU" if GPUS else "CPU")
    assert [row["weight"] for row in result.rows] == pytest.approx(
        [1.0, -2.0, 0.5], abs=0.2
    )
    assert isinstance(result.to_dict()["history"]["loss"][0], float)


def test_train_repeats_exactly_with_a_fixed_seed():
    a = core.train("regression", "mse", epochs=2, learning_rate=0.05, seed=3)
    b = core.train("regression", "mse", epochs=2, learning_rate=0.05, seed=3)
    c = core.train("regression", "mse", epochs=2, learning_rate=0.05, seed=4)
    assert a.history == b.history
    assert a.history != c.history


def test_should_stop_ends_the_run_after_the_current_epoch():
    result = core.train(
        "regression", "mse", epochs=10, should_stop=lambda: True, learning_rate=0.1
    )
    assert result.epochs == [1]
    assert result.stopped == "stopped by the user"


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 51}, "epochs"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"max_seconds": 1e6}, "max_seconds"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        core.train("regression", "mse", **kwargs)


def test_unknown_task_or_variant():
    with pytest.raises(ValueError, match="`task`"):
        core.train("nope", "mse")
    with pytest.raises(ValueError, match="`variant`"):
        core.train("regression", "nope")


def test_mirrored_path_on_two_logical_cpu_devices():
    # Logical devices must be set before TensorFlow initialises: a fresh process.
    script = textwrap.dedent(
        """
        from lossviz._tf import tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import tests.test_training_core as t
        from lossviz.training import core
        strategy, device = core.default_strategy()
        assert strategy.num_replicas_in_sync == 2, strategy
        result = core.train("regression", "mse", epochs=3, learning_rate=0.1)
        assert result.device == "2 CPU devices (mirrored)", result.device
        loss = result.history["loss"]
        assert loss[-1] < 0.5 * loss[0], loss

        # A second, different model in the same process: one shared strategy,
        # or its collective ops clash with the first model's.
        import keras
        def wider(ctx):
            x = core.rng(ctx.seed).normal(size=(64, 3)).astype("float32")
            with ctx.strategy.scope():
                model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(7),
                                          keras.layers.Dense(1)])
                model.compile(keras.optimizers.Adam(ctx.learning_rate), loss="mse")
            model.fit(x, x[:, :1], epochs=ctx.epochs, verbose=0,
                      callbacks=ctx.callbacks)
        core.register_task(core.Task("wider", "wider", ("mse",), wider))
        again = core.train("wider", "mse", epochs=2, learning_rate=0.01)
        assert again.device == "2 CPU devices (mirrored)", again.device
        print("ok", loss)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("ok")
