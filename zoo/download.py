"""ember's one verified, resumable download into its cache folder (data sets and pretrained weights).

``download(url, path, sha256)`` returns ``path`` once it holds the file whose SHA-256 is ``sha256``
(a full hex digest, or a prefix of one: torchvision publishes 8 hex digits in its file names, which
is what ``torch.hub`` checks). An existing verified file is used as it is. Otherwise the bytes stream
to ``path + ".partial"`` while they are hashed; an interrupted download resumes from there with an
HTTP Range request; a tqdm bar shows on a terminal; the file is renamed to ``path`` only once its
digest matches. A mismatch deletes the partial file and raises :class:`ChecksumError`; no network
raises a :class:`DownloadError` that names the file to fetch by hand and where to put it.
"""
import hashlib
import http.client
import logging
import os
import sys
import urllib.error
import urllib.request

from ember._cache import announce

logger = logging.getLogger("ember.zoo")

CHUNK = 1 << 20


class DownloadError(OSError):
    """A file could not be downloaded (unreachable server, HTTP error, cut connection), or its content is
    not the expected one; the message says where to put the file by hand.

    Example:
        >>> import tempfile
        >>> from ember.zoo.download import DownloadError, download
        >>> folder = tempfile.mkdtemp()
        >>> try:
        ...     download(f"file://{folder}/missing.bin", f"{folder}/copy.bin", "0" * 64, progress=False)
        ... except DownloadError as e:
        ...     print("Offline?" in str(e), f"put it at {folder}/copy.bin" in str(e))
        True True
    """


class ChecksumError(DownloadError, ValueError):
    """A downloaded or cached file's SHA-256 is not the expected one (a ``DownloadError`` and a ``ValueError``).

    Example:
        >>> import pathlib, tempfile
        >>> from ember.zoo.download import ChecksumError, download
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "data.bin").write_bytes(b"ember")
        >>> try:
        ...     download((folder / "data.bin").as_uri(), str(folder / "copy.bin"), "0" * 64, progress=False)
        ... except ChecksumError as e:
        ...     print(str(e).split(":")[0], (folder / "copy.bin.partial").exists())
        sha256 mismatch for file... False
    """


def sha256_of(path):
    """The SHA-256 hex digest of a file, read in 1 MB chunks.

    Example:
        >>> import tempfile
        >>> from ember.zoo.download import sha256_of
        >>> with tempfile.NamedTemporaryFile(delete=False) as f:
        ...     _ = f.write(b"ember")
        >>> sha256_of(f.name)[:16]
        '7cadc15d609c4ae9'
    """
    return _hasher_of(path).hexdigest()


def _hasher_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest


def matches(digest, expected):
    """Whether hex ``digest`` is ``expected``: a full digest, or a prefix of at least 8 hex digits.

    Example:
        >>> from ember.zoo.download import matches
        >>> digest = "7cadc15d609c4ae9" + "0" * 48
        >>> matches(digest, digest), matches(digest, "7CADC15D"), matches(digest, "7cad")
        (True, True, False)
    """
    expected = expected.lower()
    return digest == expected if len(expected) >= 64 else len(expected) >= 8 and digest.startswith(expected)


def _offline(url, path, sha256, reason, kept=""):
    return (f"could not download {url} ({reason}){kept}. Offline? Download that file elsewhere, check that its "
            f"SHA-256 is (or starts with) {sha256}, and put it at {path} (EMBER_CACHE_DIR moves the cache)")


def _progress_bar(show, total, initial, name):
    if not show:
        return None
    from tqdm import tqdm  # noqa: PLC0415 - only when a bar is shown

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name)


def _open(url, have, timeout):
    """The response for ``url`` from byte ``have`` on, and whether it resumes there (None: nothing left)."""
    headers = {"User-Agent": "ember", **({"Range": f"bytes={have}-"} if have else {})}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to send: the partial file is whole (checked next)
            return None, True
        raise
    resumed = bool(have) and response.status == 206 and \
        (response.headers.get("Content-Range") or "").startswith(f"bytes {have}-")
    return response, resumed


def _receive(response, partial, hasher, resumed, show):
    """Append the response's bytes to ``partial`` (or write it anew), hashing them; returns the bytes expected
    in the file at the end (None when the server did not say)."""
    have = os.path.getsize(partial) if resumed else 0
    length = response.headers.get("Content-Length")
    total = have + int(length) if length is not None else None
    bar = _progress_bar(show, total, have, os.path.basename(partial)[:-len(".partial")])
    try:
        with open(partial, "ab" if resumed else "wb") as out:
            for block in iter(lambda: response.read(CHUNK), b""):
                out.write(block)
                hasher.update(block)
                if bar is not None:
                    bar.update(len(block))
    finally:
        if bar is not None:
            bar.close()
    return total


def download(url, path, sha256, size=None, progress=None, timeout=60):
    """Make ``path`` hold the file at ``url`` whose SHA-256 is ``sha256``, and return ``path``.

    Args:
        url: where to download from (http, https or file).
        path: where the verified file goes; ``path + ".partial"`` holds an unfinished download.
        sha256: the expected SHA-256 hex digest, or its first 8 or more hex digits.
        size: the expected size in bytes, for the log line only.
        progress: None (a tqdm bar when standard error is a terminal), True or False.
        timeout: seconds to wait for the server on each read.

    Raises:
        DownloadError: the server cannot be reached or the connection broke (what was received is kept
            and the next call resumes); the message says which file to put where.
        ChecksumError (a DownloadError and a ValueError): the file's digest is not ``sha256``.

    Example:
        >>> import hashlib, pathlib, tempfile
        >>> from ember.zoo.download import download
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> (folder / "data.bin").write_bytes(b"ember")
        5
        >>> digest = hashlib.sha256(b"ember").hexdigest()
        >>> path = download((folder / "data.bin").as_uri(), str(folder / "copy.bin"), digest, progress=False)
        >>> pathlib.Path(path).read_bytes()
        b'ember'
    """
    if os.path.exists(path):
        if matches(sha256_of(path), sha256):
            return path
        logger.warning("%s does not have the expected SHA-256; downloading it again", path)
        os.unlink(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create {folder} for {os.path.basename(path)}: {e}; set EMBER_CACHE_DIR to a "
                            "writable folder") from e
    partial = path + ".partial"
    have = os.path.getsize(partial) if os.path.exists(partial) else 0
    what = f"{size / 1e6:.1f} MB" if size else "size unknown"
    announce(logger, f"downloading {os.path.basename(path)} ({what}) from {url} into {folder}"
             + (f", resuming after {have:,} bytes" if have else ""))
    try:
        response, resumed = _open(url, have, timeout)
        hasher = _hasher_of(partial) if resumed else hashlib.sha256()
        total = None
        if response is not None:
            with response:
                show = sys.stderr.isatty() if progress is None else bool(progress)
                total = _receive(response, partial, hasher, resumed, show)
        if total is not None and os.path.getsize(partial) < total:
            raise http.client.IncompleteRead(b"", total - os.path.getsize(partial))
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        reason = getattr(e, "reason", None) or e
        kept = (f"; the {os.path.getsize(partial):,} bytes received are kept in {partial} and the next call resumes"
                if os.path.exists(partial) and os.path.getsize(partial) else "")
        raise DownloadError(_offline(url, path, sha256, reason, kept)) from e
    digest = hasher.hexdigest()
    if not matches(digest, sha256):
        os.unlink(partial)
        raise ChecksumError(f"sha256 mismatch for {url}: expected {sha256}, got {digest}; the download was deleted "
                            "(a proxy or mirror sent something else?); call again to retry")
    os.replace(partial, path)
    return path
