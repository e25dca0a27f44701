"""Where ember keeps the files it makes at run time: one user cache folder, never the installed package.

``cache_home()`` is ``$EMBER_HOME`` if set (the name the zoo's weights used first), else
``$EMBER_CACHE_DIR``, else ``$XDG_CACHE_HOME/ember``, else ``~/.cache/ember``. Inside it: ``numba/`` (compiled
CPU kernels, see ``ember.kernels.cpu.jit``), ``datasets/`` (downloaded data sets, see
``ember.zoo.datasets``) and ``weights/`` (pretrained weights, see ``ember.zoo.weights``).

NOTE: a file written inside the installed package is not in pip's RECORD, so pip cannot remove it;
Numba's default cache (``__pycache__`` beside the kernels) left a ``site-packages/ember/`` tree without
``__init__.py`` after ``pip install .`` then ``pip install -e .``, which shadowed the editable install.

This module imports nothing from ember, so every room may use it (like ``_version``).
"""
import os
import sys


def cache_home(*parts):
    """The path of ember's user cache folder, or of ``parts`` inside it (nothing is created).

    Example:
        >>> import os
        >>> from ember._cache import cache_home
        >>> os.path.basename(cache_home("numba"))
        'numba'
    """
    root = os.environ.get("EMBER_HOME") or os.environ.get("EMBER_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = os.path.join(xdg if xdg else os.path.join(os.path.expanduser("~"), ".cache"), "ember")
    return os.path.join(os.path.abspath(root), *parts)


def folder_size(path):
    """Total bytes of the files under ``path`` (0 when it does not exist)."""
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(folder, name))
            except OSError:  # removed while we walked
                pass
    return total


def announce(logger, message):
    """Say what ember is filling its cache with (compiling, downloading): through ``logger`` at INFO when the
    application configured logging, else as one line on stderr, so that a first run never sits silent."""
    if logger.hasHandlers():
        logger.info(message)
    else:
        print(f"ember: {message}", file=sys.stderr, flush=True)
