#!/usr/bin/env python3
"""A one-layer image, as a docker-archive (`docker save`'s format), from a folder.

    archive.py ROOTFS TAG OUT.tar [--user U] [--entrypoint JSON] [--cmd JSON]

The testbed has no Docker and no registry: `ctr images import` reads this. Every file
in the layer is owned by root (the folder's owner is whoever built it) and dated 0,
so the same folder makes the same image.
"""
import argparse
import hashlib
import io
import json
import os
import tarfile


def layer(rootfs):
    def owned_by_root(info):
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        return info

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for top, dirs, files in os.walk(rootfs):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                path = os.path.join(top, name)
                tar.add(path, arcname=os.path.relpath(path, rootfs), recursive=False,
                        filter=owned_by_root)
    return buffer.getvalue()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("rootfs")
    parser.add_argument("tag")
    parser.add_argument("out")
    parser.add_argument("--user", default="")
    parser.add_argument("--entrypoint", default="null", type=json.loads)
    parser.add_argument("--cmd", default="null", type=json.loads)
    args = parser.parse_args()

    blob = layer(args.rootfs)
    diff_id = hashlib.sha256(blob).hexdigest()
    config = json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "User": args.user,
            "Entrypoint": args.entrypoint,
            "Cmd": args.cmd,
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "testbed/node/archive.py"}],
    }, sort_keys=True).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{
        "Config": config_name,
        "RepoTags": [args.tag],
        "Layers": [diff_id + "/layer.tar"],
    }]).encode()

    with tarfile.open(args.out, mode="w") as out:
        for name, data in ((diff_id + "/layer.tar", blob), (config_name, config),
                           ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))


if __name__ == "__main__":
    main()
