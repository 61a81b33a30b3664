"""Downloading from the Hugging Face hub with huggingface_hub, checked against the hub's own checksum.

huggingface_hub does the transfer: HF_ENDPOINT (a mirror), HF_HOME / HF_HUB_CACHE (where files are kept),
HF_HUB_OFFLINE, a progress bar, and resuming a transfer the network cut (it asks for the rest with a Range
request). It checks only the file's size, so we check the content: for files stored with Git LFS, like the
seed's checkpoints, the hub's ETag is the file's sha256, and hf_hub_download keeps each file in its cache as
`blobs/<ETag>`. A file whose content does not match is deleted from the cache, so the next try downloads it
again.
"""

from __future__ import annotations

import re
from pathlib import Path

from tad_daemon.models.upstream import file_sha256

SHA256 = re.compile(r"[0-9a-f]{64}")  # fullmatch only


class DownloadError(RuntimeError):
    """The file could not be fetched (network, hub, or a corrupt transfer); trying again may help."""


class NotFoundOnHub(DownloadError):
    pass


def fetch(repo: str, filename: str, revision: str = "main") -> tuple[Path, str]:
    """The local path of `filename` from the model repo `repo`, downloaded if needed, and its verified sha256.

    OSError (e.g. disk full) passes through; everything the hub or the network does wrong is a DownloadError.
    """
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.utils import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{repo} {filename}"
    try:
        path = Path(hf_hub_download(repo, filename, revision=revision))
    except LocalEntryNotFoundError as e:
        if constants.HF_HUB_OFFLINE:
            raise DownloadError(f"{where} is not in the Hugging Face cache and HF_HUB_OFFLINE is set: "
                                "unset it to download") from None
        cause = f" ({_first_line(e.__cause__)})" if e.__cause__ else ""
        raise DownloadError(f"could not reach {constants.ENDPOINT} for {where}{cause}: check the internet "
                            "connection (or HF_ENDPOINT, if you use a mirror)") from None
    except EntryNotFoundError:
        raise NotFoundOnHub(f"{where}: no such file in that repository (revision {revision})") from None
    except RevisionNotFoundError:
        raise NotFoundOnHub(f"{where}: no revision {revision!r} in that repository") from None
    except RepositoryNotFoundError:
        raise NotFoundOnHub(f"{where}: repository not found on {constants.ENDPOINT} (or it is private)") from None
    except HfHubHTTPError as e:
        raise DownloadError(f"{where}: the hub answered {_first_line(e)}") from None
    except OSError as e:
        if e.errno is not None:  # the file system's own errors (disk full, read-only cache): the caller's
            raise
        raise DownloadError(f"{where}: download failed ({_first_line(e)}); run the command again") from None
    except Exception as e:  # the network gave up mid-transfer (raised as this hub version's HTTP client does)
        raise DownloadError(f"{where}: download failed ({_first_line(e)}); run the command again") from None

    expected = _hub_sha256(path, repo, filename)
    actual = file_sha256(path)
    if actual != expected:
        blob = path.resolve()
        path.unlink(missing_ok=True)
        blob.unlink(missing_ok=True)
        raise DownloadError(f"{where}: the downloaded file is corrupt (sha256 {actual[:12]}..., the hub says "
                            f"{expected[:12]}...). It was deleted; run the command again to download it again")
    return path, actual


def _hub_sha256(path: Path, repo: str, filename: str) -> str:
    blob = path.resolve()
    if blob.parent.name == "blobs" and SHA256.fullmatch(blob.name):
        return blob.name
    # No symbolic links here (e.g. Windows without developer mode): the cache holds a plain copy, so ask
    # the hub again, for the same commit (the snapshot folder's name).
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    try:
        etag = get_hf_file_metadata(hf_hub_url(repo, filename, revision=path.parent.name)).etag or ""
    except Exception as e:  # network or hub trouble, in whatever form this huggingface_hub version raises it
        raise DownloadError(f"{repo} {filename}: could not ask the hub for its checksum ({_first_line(e)})") from None
    if not SHA256.fullmatch(etag):
        raise DownloadError(f"{repo} {filename}: the hub gives no sha256 for it (ETag {etag!r}), so it cannot be "
                            "verified")
    return etag


def _first_line(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__
