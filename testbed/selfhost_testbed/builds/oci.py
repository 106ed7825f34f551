"""OCI image archives without a registry or a container tool: layers from staging directories."""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
from typing import BinaryIO, Sequence

from ..cache import sha256_file

Layer = tuple[str, int, str]  # (sha256 of the gzip'd blob, its size, sha256 of the uncompressed tar = diff id)
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
EPOCH = "1970-01-01T00:00:00Z"


class _HashingWriter:
    """Passes writes through to f and hashes them: the diff id of a layer is the hash of its plain tar."""

    def __init__(self, f: BinaryIO, h: "hashlib._Hash") -> None:
        self.f = f
        self.h = h

    def write(self, b: bytes) -> int:
        self.h.update(b)
        return self.f.write(b)

    def flush(self) -> None:
        self.f.flush()


def _owned_by_root(ti: tarfile.TarInfo) -> tarfile.TarInfo:
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    ti.mtime = 0
    return ti


class OCIWriter:
    """Writes OCI image archives (oci-layout, index.json, blobs/sha256/...) that `ctr images import`
    loads.  Layers are built from staging directories and shared between images by content."""

    def __init__(self, workdir: str) -> None:
        self.blobs = os.path.join(workdir, "blobs")
        os.makedirs(self.blobs, exist_ok=True)
        self.layers: dict[str, Layer] = {}

    def _put(self, data: bytes) -> tuple[str, int]:
        d = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.blobs, d), "wb") as f:
            f.write(data)
        return d, len(data)

    def layer(self, key: str, tree: str) -> Layer:
        """tree: a directory whose contents become the layer (owner root, mtime 0)."""
        if key in self.layers:
            return self.layers[key]
        tmp = os.path.join(self.blobs, "tmp-" + re.sub(r"\W", "_", key))
        h_diff = hashlib.sha256()
        with open(tmp, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz:
                hw = _HashingWriter(gz, h_diff)  # type: ignore[arg-type]
                with tarfile.open(fileobj=hw, mode="w|", format=tarfile.PAX_FORMAT) as t:  # type: ignore[call-overload]
                    for name in sorted(os.listdir(tree)):
                        t.add(os.path.join(tree, name), arcname=name, filter=_owned_by_root)
        dg = sha256_file(tmp)
        size = os.path.getsize(tmp)
        os.rename(tmp, os.path.join(self.blobs, dg))
        self.layers[key] = (dg, size, h_diff.hexdigest())
        return self.layers[key]

    def image(self, ref: str, layer_keys: Sequence[str], out_path: str, entrypoint: list[str] | None = None,
              cmd: list[str] | None = None, env: list[str] | None = None, user: str | None = None,
              workdir: str = "/") -> str:
        """Write the archive of image `ref` made of the given layers; returns its manifest digest."""
        lays = [self.layers[k] for k in layer_keys]
        cfg: dict[str, object] = {"Env": env or [DEFAULT_PATH], "WorkingDir": workdir}
        if entrypoint:
            cfg["Entrypoint"] = entrypoint
        if cmd:
            cfg["Cmd"] = cmd
        if user:
            cfg["User"] = user
        config = {"architecture": "amd64", "os": "linux", "created": EPOCH, "config": cfg,
                  "rootfs": {"type": "layers", "diff_ids": ["sha256:" + lay[2] for lay in lays]},
                  "history": [{"created": EPOCH, "created_by": "selfhost testbed: " + k} for k in layer_keys]}
        cd, cs = self._put(json.dumps(config, sort_keys=True).encode())
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                               "digest": "sha256:" + cd, "size": cs},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                "digest": "sha256:" + lay[0], "size": lay[1]} for lay in lays]}
        md, ms = self._put(json.dumps(manifest, sort_keys=True).encode())
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                "digest": "sha256:" + md, "size": ms,
                                "platform": {"architecture": "amd64", "os": "linux"},
                                "annotations": {"io.containerd.image.name": ref,
                                                "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[1]}}]}
        tmp = out_path + ".tmp"
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as t:
            def addbytes(name: str, data: bytes) -> None:
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                ti.mode = 0o644
                t.addfile(ti, io.BytesIO(data))

            def readable(ti: tarfile.TarInfo) -> tarfile.TarInfo:
                ti.mode = 0o644
                return ti
            addbytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
            addbytes("index.json", json.dumps(index, sort_keys=True).encode())
            for d in [cd, md] + [lay[0] for lay in lays]:
                t.add(os.path.join(self.blobs, d), arcname="blobs/sha256/" + d, filter=readable)
        os.rename(tmp, out_path)
        return "sha256:" + md


def stage(root: str, files: Sequence[tuple[str, str, int]] = (), dirs: Sequence[tuple[str, int]] = (),
          links: Sequence[tuple[str, str]] = (), texts: Sequence[tuple[str, str, int]] = ()) -> str:
    """Make a layer staging tree: files = [(src, dst_path, mode)], dirs = [(path, mode)],
    links = [(target, path)], texts = [(path, content, mode)]."""
    for p, m in dirs:
        os.makedirs(os.path.join(root, p.lstrip("/")), exist_ok=True)
        os.chmod(os.path.join(root, p.lstrip("/")), m)
    for src, dst, m in files:
        d = os.path.join(root, dst.lstrip("/"))
        os.makedirs(os.path.dirname(d), exist_ok=True)
        shutil.copyfile(src, d)
        os.chmod(d, m)
    for target, p in links:
        d = os.path.join(root, p.lstrip("/"))
        os.makedirs(os.path.dirname(d), exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(d)
        os.symlink(target, d)
    for p, content, m in texts:
        d = os.path.join(root, p.lstrip("/"))
        os.makedirs(os.path.dirname(d), exist_ok=True)
        with open(d, "w") as f:
            f.write(content)
        os.chmod(d, m)
    return root
