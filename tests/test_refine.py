"""The L-BFGS refinement of trained networks (training.refine), without Keras.

The backpropagated gradient is checked against central finite differences
for every activation, and refinement is checked to lower the validation
error of a deliberately under-trained network on a smooth function.
"""

import numpy as np
import pytest

from neurosynchro.network import ACTIVATIONS, Network
from neurosynchro.training import _FlatNetwork, refine


def random_network(rng, activation, widths=(3, 7, 5, 1)):
    kernels = [
        rng.normal(size=(a, b)) / np.sqrt(a)
        for a, b in zip(widths[:-1], widths[1:], strict=True)
    ]
    biases = [rng.normal(size=b) * 0.3 for b in widths[1:]]
    activations = [activation] * (len(widths) - 2) + ["linear"]
    return Network(kernels, biases, activations, name="test")


@pytest.mark.parametrize("activation", [a for a in ACTIVATIONS if a != "relu"])
def test_gradient_matches_finite_differences(activation):
    rng = np.random.default_rng(1)
    flat = _FlatNetwork(random_network(rng, activation))
    x, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    loss, gradient = flat.loss_and_gradient(flat.vector, x, y)
    # The loss is the mean squared error of what the network computes.
    assert loss == pytest.approx(np.mean((flat.predict(flat.vector, x) - y) ** 2))
    step = 1e-6
    numeric = np.empty_like(gradient)
    for i in range(flat.vector.size):
        e = np.zeros_like(flat.vector)
        e[i] = step
        plus = flat.loss_and_gradient(flat.vector + e, x, y)[0]
        minus = flat.loss_and_gradient(flat.vector - e, x, y)[0]
        numeric[i] = (plus - minus) / (2 * step)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-8)


def test_relu_gradient_away_from_kinks():
    rng = np.random.default_rng(2)
    flat = _FlatNetwork(random_network(rng, "relu"))
    x, y = rng.normal(size=(30, 3)), rng.normal(size=30)
    _, gradient = flat.loss_and_gradient(flat.vector, x, y)
    direction = rng.normal(size=flat.vector.size)
    step = 1e-7  # small enough that no unit crosses zero
    plus = flat.loss_and_gradient(flat.vector + step * direction, x, y)[0]
    minus = flat.loss_and_gradient(flat.vector - step * direction, x, y)[0]
    assert gradient @ direction == pytest.approx((plus - minus) / (2 * step), rel=1e-5)


def test_refine_lowers_validation_error_and_keeps_float32():
    rng = np.random.default_rng(3)

    def truth(x):
        return np.sin(2 * x[:, 0]) * np.exp(-(x[:, 1] ** 2)) + 0.3 * x[:, 2]

    x, x_val = rng.uniform(-1, 1, size=(2000, 3)), rng.uniform(-1, 1, size=(300, 3))
    network = random_network(rng, "tanh", widths=(3, 16, 16, 1))
    before = np.sqrt(np.mean((network(x_val) - truth(x_val)) ** 2))
    refined, done = refine(network, x, truth(x), x_val, truth(x_val), 400)
    after = np.sqrt(np.mean((refined(x_val) - truth(x_val)) ** 2))
    assert 0 < done <= 400
    assert after < before / 20
    assert after < 0.02  # the function is easy for 16 x 16 tanh units
    # Weights rounded to float32, as Keras holds them (and saved compact).
    assert all(np.array_equal(k, k.astype(np.float32)) for k in refined.kernels)
    assert refined.activations == network.activations


def test_refine_returns_the_network_when_nothing_improves():
    rng = np.random.default_rng(4)
    network = random_network(rng, "tanh")
    x = rng.normal(size=(50, 3))
    # Validation targets unrelated to training targets: fitting the
    # training rows only makes the validation loss worse, so the original
    # network is returned unchanged.
    y = network(x)
    x_val = rng.normal(size=(50, 3))
    y_val = network(x_val)
    refined, _ = refine(network, x, y, x_val, y_val, 20)
    assert refined is network


def test_report_line_says_regression_or_classes_by_the_trainer_not_the_numbers():
    from neurosynchro.training import TrainingReport

    # A regression whose relative errors are NaN (an overflowing map, say)
    # is still reported as a regression, not as a misclassified fraction.
    broken = TrainingReport("rho_Q", "generic", 90, 0, 1, 1.0, 0.5)
    assert "misclassified" not in broken.line()
    assert "relative error median nan%" in broken.line()
    assert "1 epoch," in broken.line()
    classes = TrainingReport("s", "binary", 90, 0, 3, 1.0, 0.02, binary=True)
    assert classes.line().endswith("validation misclassified 2.00%")
