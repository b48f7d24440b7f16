"""FGSM and its iterative variants on a CNN trained in the test session."""

import numpy as np
import tensorflow as tf

import tfxai
from tests.conftest import assert_unchanged, weights_snapshot


def test_fgsm_flips_most_predictions(localisation):
    model, images, labels, _ = localisation
    snapshot = weights_snapshot(model)
    clean = model.predict(images, verbose=0).argmax(-1)
    assert (clean == labels).mean() > 0.9
    adversarial = tfxai.fgsm(model, images, epsilon=0.2).numpy()
    assert np.abs(adversarial - images).max() <= 0.2 + 1e-6
    assert adversarial.min() >= 0.0 and adversarial.max() <= 1.0
    flipped = model.predict(adversarial, verbose=0).argmax(-1) != clean
    assert flipped.mean() > 0.5, flipped.mean()
    small = tfxai.fgsm(model, images, epsilon=0.001).numpy()
    assert (model.predict(small, verbose=0).argmax(-1) != clean).mean() < flipped.mean()
    assert_unchanged(model, snapshot)


def test_targeted_fgsm_raises_the_target_probability(localisation):
    model, images, labels, _ = localisation
    targets = (labels + 1) % 4
    logits = tfxai.surgery.logits_model(model)  # log-probabilities: float32 probabilities underflow to 0

    def log_probability(x):
        return tf.nn.log_softmax(logits(x)).numpy()[np.arange(len(images)), targets]

    before = log_probability(images)
    adversarial = tfxai.fgsm(model, images, targets, epsilon=0.05, targeted=True)
    after = log_probability(adversarial)
    assert np.mean(after > before) > 0.9
    assert after.mean() > before.mean() + 1.0
    strong = tfxai.fgsm(model, images, targets, epsilon=0.2, targeted=True)
    prob = model.predict(strong, verbose=0)[np.arange(len(images)), targets]
    assert prob.mean() > model.predict(images, verbose=0)[np.arange(len(images)), targets].mean()


def test_iterative_attacks_stay_in_the_ball_and_beat_one_step(localisation):
    model, images, labels, _ = localisation
    epsilon = 0.03
    one_step = tfxai.fgsm(model, images, labels, epsilon=epsilon)
    bim = tfxai.iterative_fgsm(model, images, labels, epsilon=epsilon, num_steps=8).numpy()
    pgd_a = tfxai.pgd(model, images, labels, epsilon=epsilon, num_steps=8, seed=3).numpy()
    pgd_b = tfxai.pgd(model, images, labels, epsilon=epsilon, num_steps=8, seed=3).numpy()
    np.testing.assert_array_equal(pgd_a, pgd_b)
    for adversarial in (bim, pgd_a):
        assert np.abs(adversarial - images).max() <= epsilon + 1e-6
        assert adversarial.min() >= 0.0 and adversarial.max() <= 1.0

    def accuracy(x):
        return (model.predict(x, verbose=0).argmax(-1) == labels).mean()

    assert accuracy(bim) <= accuracy(one_step)
    assert accuracy(pgd_a) <= accuracy(one_step) + 0.05


def test_fgsm_perturbation_is_the_sign_of_the_loss_gradient(localisation):
    model, images, labels, _ = localisation
    direction = tfxai.fgsm_perturbation(model, images[:4], labels[:4]).numpy()
    assert set(np.unique(direction)) <= {-1.0, 0.0, 1.0}
    np.testing.assert_allclose(
        tfxai.fgsm(model, images[:4], labels[:4], epsilon=0.1, clip=None).numpy(), images[:4] + 0.1 * direction, atol=1e-6
    )


def test_saturated_softmax_still_gives_a_gradient():
    """Loss on logits: a softmax that is exactly 1.0 in float32 must not zero the FGSM direction."""
    import keras

    inputs = keras.Input((4, 4, 1))
    dense = keras.layers.Dense(2, activation="softmax")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([np.stack([np.full(16, 1.25), np.full(16, -1.25)], 1), np.zeros(2)])
    x = np.ones((1, 4, 4, 1), "float32")
    assert model(x).numpy()[0, 0] == 1.0  # saturated
    direction = tfxai.fgsm_perturbation(model, x, [0]).numpy()
    assert np.all(direction == -1.0)
