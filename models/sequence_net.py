"""The Keras network of the sequence family, its training loop and its batched forward pass.

TensorFlow and Keras are imported only when :func:`runtime` is first called, never when
this module is imported: the worker and the CLI stay free of TensorFlow until a sequence
model is actually fitted or loaded.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.base import FloatArray, ModelError

# Adam's gradient-norm clip: one stray window cannot blow up an LSTM's weights.
CLIP_NORM = 1.0


@dataclass(frozen=True)
class TrainConfig:
    """What one training run needs beyond the data."""

    epochs: int
    batch_size: int
    learning_rate: float
    patience: int
    seed: int


@dataclass(frozen=True)
class TrainOutcome:
    """Learning curve, the CSVLogger file's text and the epoch whose weights were kept."""

    curve: dict[str, list[float]]
    log_csv: str
    best_epoch: int | None


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@functools.cache
def runtime() -> Any:
    """Import Keras on the TensorFlow backend, quietly and with a bounded thread pool."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # 2 = warnings and errors only
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tensorflow as tf

    try:
        # One batch is scored at a time, so parallelism inside ops is what pays; a single
        # inter-op thread stops TensorFlow from oversubscribing a small machine.
        tf.config.threading.set_intra_op_parallelism_threads(_cpu_count())
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # the TensorFlow runtime was already initialised by its first user
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ModelError(f"sequence: Keras runs on {keras.backend.backend()!r}, not tensorflow")
    return keras


def masked_mse(y_true: Any, y_pred: Any) -> Any:
    """Mean squared error over the labels that exist (NaN labels weigh nothing)."""
    ops = runtime().ops
    present = ops.logical_not(ops.isnan(y_true))
    weight = ops.cast(present, y_pred.dtype)
    clean = ops.where(present, y_true, ops.zeros_like(y_true))  # no NaN reaches a gradient
    squared = ops.square(y_pred - clean) * weight
    return ops.sum(squared, axis=-1) / ops.maximum(ops.sum(weight, axis=-1), 1.0)


def build(seq_len: int, channels: int, outputs: int, units: int, seed: int) -> Any:
    """One LSTM layer read out by a linear layer: one output per predicted step.

    Seeds the global Python, NumPy and TensorFlow generators (Keras' one switch for a
    reproducible initialisation).
    """
    keras = runtime()
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input(shape=(seq_len, channels)),
            keras.layers.LSTM(units),
            keras.layers.Dense(outputs),
        ],
        name="sequence",
    )


def compile_for_training(network: Any, learning_rate: float) -> None:
    """(Re)compile with Adam at ``learning_rate`` and the masked loss."""
    keras = runtime()
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=CLIP_NORM)
    network.compile(optimizer=optimizer, loss=masked_mse)


def train(network: Any, data: tuple[FloatArray, ...], config: TrainConfig) -> TrainOutcome:
    """Fit ``network`` on (x, y, x_val, y_val); keep the weights with the lowest val_loss.

    The starting weights are a candidate too: when no epoch beats them (which only
    happens when continuing from trained weights) they are restored unchanged.
    """
    keras = runtime()
    x, y, x_val, y_val = (np.asarray(a, dtype=np.float32) for a in data)
    keras.utils.set_random_seed(config.seed)
    compile_for_training(network, config.learning_rate)
    start_weights = network.get_weights()
    baseline = float(network.evaluate(x_val, y_val, batch_size=config.batch_size, verbose=0))
    with tempfile.TemporaryDirectory(prefix="driftline-sequence-") as tmp:
        best = Path(tmp) / "best.weights.h5"
        log = Path(tmp) / "training_log.csv"
        callbacks = [
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience),
            keras.callbacks.ModelCheckpoint(
                str(best),
                monitor="val_loss",
                save_best_only=True,
                save_weights_only=True,
                initial_value_threshold=baseline,
            ),
            keras.callbacks.CSVLogger(str(log)),
        ]
        history = network.fit(
            x,
            y,
            validation_data=(x_val, y_val),
            epochs=config.epochs,
            batch_size=config.batch_size,
            shuffle=True,
            callbacks=callbacks,
            verbose=0,
        )
        if best.exists():
            network.load_weights(str(best))
        else:
            network.set_weights(start_weights)
        log_csv = log.read_text(encoding="utf-8") if log.exists() else ""
    curve = {k: [float(v) for v in history.history.get(k, [])] for k in ("loss", "val_loss")}
    return TrainOutcome(curve, log_csv, _best_epoch(curve["val_loss"], baseline))


def _best_epoch(val_loss: list[float], baseline: float) -> int | None:
    if not val_loss or min(val_loss) >= baseline:
        return None
    return int(np.argmin(val_loss))


def forward_fn(network: Any) -> Callable[[FloatArray], FloatArray]:
    """A compiled forward pass: one graph call per batch, traced once for any batch size."""
    runtime()
    import tensorflow as tf

    seq_len, channels = network.input_shape[1], network.input_shape[2]
    spec = tf.TensorSpec(shape=(None, seq_len, channels), dtype=tf.float32)
    graph = tf.function(lambda x: network(x, training=False), input_signature=[spec])

    def forward(x: FloatArray) -> FloatArray:
        out = graph(tf.constant(x, dtype=tf.float32))
        return np.asarray(out.numpy(), dtype=np.float64)

    return forward


def save(network: Any, path: Path) -> None:
    """Write the network in the native ``.keras`` format (a zip of JSON config + weights)."""
    network.save(str(path))


def load(path: Path) -> Any:
    """Read a ``.keras`` file in safe mode (no code is deserialised; no pickle)."""
    keras = runtime()
    try:
        return keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(f"sequence: cannot load network {path}: {exc}") from exc
