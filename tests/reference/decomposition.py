"""Slow float64 reference of the bias decomposition, written from Eq. 6 of the T-Grad paper.

A fixed small CNN (conv -> BN -> ReLU -> conv+ReLU -> max-pool -> BN(center=False)
-> conv -> ReLU6 -> flatten -> dense) is evaluated by hand with explicit
formulas read from the layer weights (BN effective bias beta - gamma * mean /
sqrt(var + eps), the ReLU6 constant 6 where saturated), and the gradient of the
target logit with respect to every pre-activation comes from one tape that
watches each of them. Nothing from tfxai is used.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def small_bn_cnn(seed=0, input_shape=(12, 12, 3), num_classes=3):
    """The reference architecture (float64, random biases and BN statistics)."""
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    d = "float64"
    inputs = keras.Input(input_shape, dtype=d)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1", dtype=d)(inputs)
    x = keras.layers.BatchNormalization(name="bn1", dtype=d)(x)
    x = keras.layers.ReLU(name="relu1", dtype=d)(x)
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="conv2", dtype=d)(x)
    x = keras.layers.MaxPooling2D(name="pool", dtype=d)(x)
    x = keras.layers.BatchNormalization(center=False, name="bn2", dtype=d)(x)
    x = keras.layers.Conv2D(6, 3, padding="valid", name="conv3", dtype=d)(x)
    x = keras.layers.ReLU(6.0, name="relu6", dtype=d)(x)
    x = keras.layers.Flatten(dtype=d)(x)
    outputs = keras.layers.Dense(num_classes, name="head", dtype=d)(x)
    model = keras.Model(inputs, outputs, name="small_bn_cnn")
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            layer.bias.assign(rng.normal(0, 0.5, layer.bias.shape))
            layer.kernel.assign(rng.normal(0, 0.5, layer.kernel.shape))
        if isinstance(layer, keras.layers.Dense):
            layer.bias.assign(rng.normal(0, 0.5, layer.bias.shape))
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape))
            if layer.beta is not None:
                layer.beta.assign(rng.normal(0, 0.5, layer.beta.shape))
            layer.moving_mean.assign(rng.normal(0, 0.5, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, layer.moving_variance.shape))
    return model


def _bn(layer):
    """(scale a, effective bias b) with BN(u) = a * u + b at inference."""
    gamma = layer.gamma.numpy() if layer.gamma is not None else 1.0
    beta = layer.beta.numpy() if layer.beta is not None else 0.0
    a = gamma / np.sqrt(layer.moving_variance.numpy() + layer.epsilon)
    return a, beta - a * layer.moving_mean.numpy()


def decomposition(model, images, targets):
    """Terms of `small_bn_cnn`: (logits_t (N,), input term (N,H,W,C), {name: term}), float64 NumPy."""
    get = model.get_layer
    x = tf.constant(images, tf.float64)

    def conv(u, layer, padding):
        return tf.nn.conv2d(u, layer.kernel, 1, padding) + layer.bias

    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        z1 = conv(x, get("conv1"), "SAME")  # bias b1 added here
        tape.watch(z1)
        a1, b1 = _bn(get("bn1"))
        y1 = a1 * z1 + b1  # BN effective bias added here
        tape.watch(y1)
        r1 = tf.nn.relu(y1)
        z2 = conv(r1, get("conv2"), "SAME")
        tape.watch(z2)
        r2 = tf.nn.relu(z2)
        p = tf.nn.max_pool2d(r2, 2, 2, "VALID")
        a2, b2 = _bn(get("bn2"))
        y2 = a2 * p + b2
        tape.watch(y2)
        z3 = conv(y2, get("conv3"), "VALID")
        tape.watch(z3)
        r3 = tf.clip_by_value(z3, 0.0, 6.0)
        tape.watch(r3)
        logits = tf.matmul(tf.reshape(r3, [r3.shape[0], -1]), get("head").kernel) + get("head").bias
        score = tf.reduce_sum(tf.gather(logits, targets, batch_dims=1))
    grads = tape.gradient(score, [x, z1, y1, z2, y2, z3, r3])
    dense_grad = np.zeros(logits.shape)
    dense_grad[np.arange(len(targets)), targets] = 1.0
    saturated = (z3.numpy() >= 6.0).astype(float)
    terms = {
        "conv1": grads[1].numpy() * get("conv1").bias.numpy(),
        "bn1": grads[2].numpy() * b1,
        "conv2": grads[3].numpy() * get("conv2").bias.numpy(),
        "bn2": grads[4].numpy() * b2,
        "conv3": grads[5].numpy() * get("conv3").bias.numpy(),
        "relu6": grads[6].numpy() * 6.0 * saturated,
        "head": dense_grad * get("head").bias.numpy(),
    }
    chosen = np.array([logits.numpy()[i, t] for i, t in enumerate(targets)])
    return chosen, grads[0].numpy() * images, terms
