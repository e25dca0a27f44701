"""Spark data for ember: RDDs of (features, label) samples from DataFrames."""
import numpy as np


def _as_array(value):
    if hasattr(value, "toArray"):  # pyspark.ml.linalg vectors
        return value.toArray()
    return np.asarray(value)


def to_sample_rdd(data, feature_cols=None, label_cols=None):
    """An RDD of (features, label) samples from an RDD of such pairs, or from a DataFrame: the
    features are ``feature_cols`` (one array/vector column, or several numeric columns stacked) and
    the label ``label_cols`` (one column, or several stacked)."""
    if hasattr(data, "rdd") and hasattr(data, "columns"):  # a DataFrame
        if not feature_cols or not label_cols:
            raise ValueError(f"a DataFrame needs feature_cols and label_cols; its columns are {data.columns}")
        feature_cols = [feature_cols] if isinstance(feature_cols, str) else list(feature_cols)
        label_cols = [label_cols] if isinstance(label_cols, str) else list(label_cols)
        missing = [c for c in feature_cols + label_cols if c not in data.columns]
        if missing:
            raise ValueError(f"columns {missing} are not in the DataFrame (it has {data.columns})")

        def row_to_sample(row):
            if len(feature_cols) == 1:
                x = _as_array(row[feature_cols[0]]).astype(np.float32)
            else:
                x = np.array([float(row[c]) for c in feature_cols], dtype=np.float32)
            y = row[label_cols[0]] if len(label_cols) == 1 else np.array([row[c] for c in label_cols])
            return x, (np.asarray(_as_array(y)) if not np.isscalar(y) else y)

        return data.select(*(feature_cols + label_cols)).rdd.map(row_to_sample)
    if hasattr(data, "mapPartitions"):
        return data
    raise TypeError(f"expected a Spark RDD of (features, label) samples or a DataFrame, got {type(data).__name__}")
