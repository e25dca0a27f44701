"""What users reach for: the Keras-like API and data sets."""
