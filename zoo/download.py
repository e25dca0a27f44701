"""A verified, resumable download into ember's cache folder (data sets; pretrained weights may share it).

``download(url, path, sha256)`` returns ``path`` once it holds the file whose SHA-256 is ``sha256``:
an existing verified file is used as it is; otherwise the bytes go to ``path + ".partial"`` (an
interrupted download resumes from there with an HTTP Range request), are checked, and only then
renamed to ``path``. A checksum mismatch deletes the partial file and raises; no network raises a
:class:`DownloadError` that names the file to fetch by hand and where to put it.
"""
import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request

from ember._cache import announce

logger = logging.getLogger("ember.zoo")

_CHUNK = 1 << 20


class DownloadError(OSError):
    """A file could not be downloaded, or its content is not the expected one."""


def sha256_of(path):
    """The SHA-256 hex digest of a file, read in 1 MB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch_into(url, partial, timeout):
    """Append the rest of ``url`` to ``partial`` (resuming from its size); returns the bytes received."""
    have = os.path.getsize(partial) if os.path.exists(partial) else 0
    request = urllib.request.Request(url, headers={"User-Agent": "ember", **({"Range": f"bytes={have}-"} if have
                                                                             else {})})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to send: the partial file is whole (checked next)
            return 0
        raise
    with response:
        if have and response.status != 206:  # the server ignored the Range: start again
            have = 0
        expected = response.headers.get("Content-Length")
        received = 0
        with open(partial, "ab" if have else "wb") as f:
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                f.write(chunk)
                received += len(chunk)
        if expected is not None and received != int(expected):
            raise http.client.IncompleteRead(b"", int(expected) - received)
    return received


def download(url, path, sha256, size=None, timeout=60):
    """Make ``path`` hold the file at ``url`` whose SHA-256 is ``sha256``, and return ``path``.

    Args:
        url: where to download from (http, https or file).
        path: where the verified file goes; ``path + ".partial"`` holds an unfinished download.
        sha256: the expected SHA-256 hex digest.
        size: the expected size in bytes, for the log line only.
        timeout: seconds to wait for the server on each read.

    Example:
        >>> import hashlib, pathlib, tempfile
        >>> from ember.zoo.download import download
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> (folder / "data.bin").write_bytes(b"ember")
        5
        >>> digest = hashlib.sha256(b"ember").hexdigest()
        >>> path = download((folder / "data.bin").as_uri(), str(folder / "copy.bin"), digest)
        >>> pathlib.Path(path).read_bytes()
        b'ember'
    """
    if os.path.exists(path):
        if sha256_of(path) == sha256:
            return path
        logger.warning("%s does not have the expected SHA-256; downloading it again", path)
        os.unlink(path)
    folder = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    partial = path + ".partial"
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create {folder} for {name}: {e}; set EMBER_CACHE_DIR to a writable folder") from e
    what = f"{size / 1e6:.1f} MB" if size else "size unknown"
    announce(logger, f"downloading {name} ({what}) from {url} into {folder}")
    try:
        _fetch_into(url, partial, timeout)
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as e:
        reason = getattr(e, "reason", None) or e
        kept = (f"; the {os.path.getsize(partial):,} bytes received are kept in {partial} and the next call resumes"
                if os.path.exists(partial) and os.path.getsize(partial) else "")
        raise DownloadError(f"could not download {url} ({reason}){kept}. Offline? Download that file elsewhere, "
                            f"check that its SHA-256 is {sha256}, and put it at {path}") from e
    actual = sha256_of(partial)
    if actual != sha256:
        os.unlink(partial)
        raise DownloadError(f"{url} has SHA-256 {actual}, expected {sha256}: the download was deleted (a proxy or "
                            "mirror sent something else?); call again to retry")
    os.replace(partial, path)
    return path
