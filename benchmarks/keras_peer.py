"""The timing peer: the original Enhance architecture in Keras/TensorFlow, with random weights.

Runs in its own virtual environment, ``benchmarks/.venv-keras`` (``make bench`` builds it with
TensorFlow from PyPI); it never imports the ``enhance`` package, and the package never depends on it.
The model is written here from the paper's description (Díaz Baso & Asensio Ramos 2018, Fig. 4): a
3x3 convolution + ReLU; ``depth`` residual blocks of [reflection pad, conv, BatchNorm, ReLU,
reflection pad, conv, BatchNorm] + identity; a padded conv + BatchNorm added to the first
features (the long skip); nearest-neighbour x2 up-sampling; a padded conv + ReLU; a 1x1 conv to one
channel. Every 3x3 convolution has one pixel of reflection padding, as in the original.

Prints one JSON object per model ('paper' and 'paper-light', as `enhance` names them) with the best
wall time of ``repeats`` calls in each of the three usual ways to run a Keras model: ``tf.function``
(compiled graph), ``model.predict`` and an eager ``model(x)`` call. The fastest of them is the peer's time.

    benchmarks/.venv-keras/bin/python benchmarks/keras_peer.py --size 400 --repeats 3
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off the table

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow import keras  # noqa: E402

#: The paper's networks by their `enhance` names (depth, width): Enhance and its light version.
SIZES = {"paper": (5, 64), "paper-light": (1, 32)}


class ReflectionPadding2D(keras.layers.Layer):
    """One pixel of reflection padding on each side of an NHWC tensor."""

    def call(self, inputs):
        return tf.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")


def _conv(x, width):
    return keras.layers.Conv2D(width, 3, padding="valid")(ReflectionPadding2D()(x))


def _batchnorm(x):
    return keras.layers.BatchNormalization(epsilon=1e-3, momentum=0.99)(x)  # the Keras defaults of the paper


def enhance_model(depth: int, width: int) -> keras.Model:
    """The Enhance network for single-channel NHWC images of any size."""
    image = keras.Input(shape=(None, None, 1))
    head = keras.layers.ReLU()(_conv(image, width))
    x = head
    for _ in range(depth):
        y = keras.layers.ReLU()(_batchnorm(_conv(x, width)))
        y = _batchnorm(_conv(y, width))
        x = keras.layers.Add()([x, y])
    x = keras.layers.Add()([_batchnorm(_conv(x, width)), head])
    x = keras.layers.UpSampling2D(size=2, interpolation="nearest")(x)
    x = keras.layers.ReLU()(_conv(x, width))
    return keras.Model(image, keras.layers.Conv2D(1, 1)(x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=400, help="image side in pixels (default: 400)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per model; the best is kept")
    parser.add_argument("--models", nargs="+", default=list(SIZES), choices=tuple(SIZES))
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    image = np.random.default_rng(0).normal(1.0, 0.1, (1, args.size, args.size, 1)).astype(np.float32)
    for name in args.models:
        depth, width = SIZES[name]
        model = enhance_model(depth, width)
        compiled = tf.function(lambda x, model=model: model(x, training=False))
        ways = {
            "tf.function": lambda compiled=compiled: compiled(image).numpy(),
            "predict": lambda model=model: model.predict(image, verbose=0),
            "eager": lambda model=model: model(image, training=False).numpy(),
        }
        seconds = {}
        for way, run in ways.items():
            out = run()  # trace and warm up
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                run()
                times.append(time.perf_counter() - start)
            seconds[way] = min(times)
        fastest = min(seconds, key=seconds.get)
        result = {"model": name, "size": args.size, "seconds": seconds[fastest], "way": fastest,
                  "seconds_by_way": seconds, "output_shape": list(out.shape), "num_params": int(model.count_params()),
                  "tensorflow": tf.__version__, "keras": keras.__version__}  # fmt: skip
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
