"""One shared local[2] SparkSession (with ember's block service) for every test in tests/spark/."""
import pytest


@pytest.fixture(scope="session")
def sc():
    from ember.optim.spark.context import init_nncontext

    context = init_nncontext(master="local[2]", app_name="ember-tests",
                             conf={"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"})
    context.setLogLevel("ERROR")
    yield context
    context.stop()
