"""Other frameworks' files into ember models: PyTorch (``torch.py``) and Keras (``keras.py``)."""
