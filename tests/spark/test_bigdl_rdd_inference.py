"""BigDL's inference calls on an RDD of Samples: model.evaluate(rdd, batch_size, [Top1Accuracy()]) with 1-based
labels, model.predict(rdd), model.predict_class(rdd), and Optimizer.create on an RDD."""
import numpy as np
import pytest

import ember
from ember.nn.criterion import ClassNLLCriterion
from ember.nn.layer import Linear, LogSoftMax, ReLU, Sequential
from ember.optim import SGD, MaxIteration, Optimizer, Top1Accuracy, Top5Accuracy
from ember.util.common import Sample

pytestmark = pytest.mark.spark


def test_evaluate_predict_and_predict_class_on_an_rdd_of_samples(sc):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 4)).astype(np.float32)
    labels = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0) + 1  # BigDL's 1-based, 4 classes
    ember.set_seed(1)
    model = Sequential().add(Linear(4, 8)).add(ReLU()).add(Linear(8, 4)).add(LogSoftMax())
    rdd = sc.parallelize([Sample.from_ndarray(x[i], labels[i]) for i in range(len(x))], 3)
    opt = Optimizer.create(model, rdd, ClassNLLCriterion(), MaxIteration(20), 30, SGD(learningrate=0.5))
    assert type(opt).__name__ == "DistriOptimizer"
    opt.set_progress(0, quiet=True).optimize()

    local = model.predict(x)
    results = model.evaluate(rdd, 16, [Top1Accuracy(), Top5Accuracy()])
    assert [r.method for r in results] == ["Top1Accuracy", "Top5Accuracy"]
    assert results[0].total_num == 90
    assert results[0].result == pytest.approx(float(np.mean(local.argmax(1) + 1 == labels)))
    assert results[1].result == 1.0  # 4 classes: always among the top 5
    assert str(results[0]).startswith("Evaluated result: ")
    np.testing.assert_allclose(np.stack(model.predict(rdd).collect()), local, rtol=1e-6)
    assert model.predict_class(rdd).collect() == (local.argmax(1) + 1).tolist()
    with pytest.raises(Exception, match="labels count from 1"):
        model.evaluate(sc.parallelize([Sample.from_ndarray(x[0], 0)]), 4, [Top1Accuracy()])
    with pytest.raises(TypeError, match="BigDL's arguments"):
        model.evaluate(rdd, 16)
