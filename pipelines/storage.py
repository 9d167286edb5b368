"""Where inputs and outputs live: local paths, or fsspec URIs (``file://``, ``s3://``, ``gs://``,
``memory://``...).

Local paths go through the os module; anything with a protocol goes through fsspec, configured
the fsspec way (credentials and endpoints from the environment, e.g. ``AWS_*`` and
``FSSPEC_S3_ENDPOINT_URL``), which Ray workers inherit. A ``memory://`` filesystem lives in one
process: Ray workers cannot read inputs from it, so it serves outputs (written by the driver).
"""

from __future__ import annotations

import glob
import hashlib
import os

import fsspec


def is_uri(path: str) -> bool:
    return "://" in path


def is_remote(path: str) -> bool:
    """A URI that the os module cannot reach (``file://`` can)."""
    return is_uri(path) and not path.startswith("file://")


def filesystem(path: str):
    """(fsspec filesystem, path within it) for a URI."""
    return fsspec.core.url_to_fs(path)


def open_binary(path: str):
    if not is_uri(path):
        return open(path, "rb")
    fs, inner = filesystem(path)
    return fs.open(inner, "rb")


def size(path: str) -> int:
    """Bytes in the file; 0 when it cannot be read (the reader then says why)."""
    try:
        if not is_uri(path):
            return os.path.getsize(path)
        fs, inner = filesystem(path)
        return int(fs.size(inner) or 0)
    except (OSError, ValueError):
        return 0


def mtime(path: str) -> str:
    """When the file last changed, as the filesystem tells it ('' if it does not)."""
    try:
        if not is_uri(path):
            return str(os.stat(path).st_mtime_ns)
        fs, inner = filesystem(path)
        info = fs.info(inner)
    except (OSError, ValueError):
        return ""
    return str(info.get("mtime") or info.get("LastModified") or info.get("ETag") or info.get("created") or "")


def expand(path: str) -> list[str]:
    """Files under ``path``: itself, every file below a folder (sorted), or a glob's matches."""
    if not is_uri(path):
        matches = [path] if os.path.lexists(path) else sorted(glob.glob(path, recursive=True))
        found = []
        for match in matches:
            if os.path.isdir(match):  # sorted by path, as the URI branch sorts
                found.extend(sorted(os.path.join(root, name) for root, _, files in os.walk(match) for name in files))
            else:
                found.append(match)
        return found
    fs, inner = filesystem(path)
    if fs.isdir(inner):
        inner_files = sorted(fs.find(inner))
    elif fs.exists(inner):
        inner_files = [inner]
    else:
        inner_files = sorted(fs.glob(inner))
    if not inner_files:
        return [path]  # the reader reports what is wrong with it
    return [fs.unstrip_protocol(f) for f in inner_files]


def local_output_dir(path: str, local_dir: str | None) -> str:
    """Where the writer builds an output: the folder itself when it is local (``file://`` too),
    else ``local_dir`` (default: a folder per destination under ~/.cache/thresher/outputs), from
    which ``publish`` uploads it. The work journal lives there too, so a rerun on the same
    machine resumes a remote output."""
    if not is_remote(path):
        return filesystem(path)[1] if is_uri(path) else path
    if local_dir:
        return local_dir
    name = hashlib.sha256(path.encode()).hexdigest()[:16]
    return os.path.join(os.path.expanduser("~"), ".cache", "thresher", "outputs", name)


def publish(local: str, destination: str, folders: list[str], manifest: str) -> None:
    """Uploads a committed local output to ``destination`` in the writer's order: the old
    manifest goes first and the new one last, so a readable manifest always describes a
    complete output (objects appear whole on object stores; there is no rename to rely on)."""
    fs, root = filesystem(destination)
    root = root.rstrip("/")
    if fs.exists(f"{root}/{manifest}"):
        fs.rm(f"{root}/{manifest}")
    for folder in folders:
        if fs.exists(f"{root}/{folder}"):
            fs.rm(f"{root}/{folder}", recursive=True)
        base = os.path.join(local, folder)
        for directory, _, files in os.walk(base):
            for name in sorted(files):
                relative = os.path.relpath(os.path.join(directory, name), local).replace(os.sep, "/")
                fs.makedirs(f"{root}/{os.path.dirname(relative)}", exist_ok=True)
                fs.put_file(os.path.join(directory, name), f"{root}/{relative}")
    fs.put_file(os.path.join(local, manifest), f"{root}/{manifest}")
