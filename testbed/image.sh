#!/usr/bin/env bash
# The operator's image without Docker, put on the node of testbed/node.sh.
#
#   testbed/image.sh DIR               build the release binary (or take
#                                      NAUTHERA_OPERATOR_BINARY), make a one-layer image of
#                                      it and import it into DIR's containerd (namespace k8s.io)
#
# The image is the Dockerfile's final stage, made by hand: its USER, ENTRYPOINT and CMD
# are read from the Dockerfile, its tag from deploy/operator.yaml, so neither is repeated
# here. Its files: the binary where ENTRYPOINT names it, the shared libraries `ldd` lists
# and the dynamic loader (what distroless/cc gives), CA certificates, /etc/passwd and
# /etc/group with 65532 nonroot (distroless's), an empty /tmp. No pull is needed: the
# Deployment's tag is not `latest`, so its pull policy is IfNotPresent.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"

say() { printf '    %s\n' "$*" >&2; }
die() { printf 'testbed: %s\n' "$*" >&2; exit 1; }

# The last value of instruction $1 in the Dockerfile's final stage (after its last FROM).
final_stage() {
  awk -v key="$1" '
    toupper($1) == "FROM" { value = "" }
    toupper($1) == key { $1 = ""; sub(/^ +/, ""); value = $0 }
    END { print value }
  ' "$root/Dockerfile"
}

image() {
  local dir="${1:?usage: image.sh DIR}"
  [ -S "$dir/node/containerd.sock" ] || die "no node in $dir: run testbed/node.sh up $dir first"
  dir="$(cd "$dir" && pwd)"
  local started=$SECONDS user entrypoint cmd tag
  user="$(final_stage USER)"
  entrypoint="$(final_stage ENTRYPOINT)"
  cmd="$(final_stage CMD)"
  # Exec form only (a JSON array): the shell form would need a shell, which the image has not.
  [[ "$entrypoint" == \[* && "$cmd" == \[* ]] || die "Dockerfile: ENTRYPOINT and CMD must be JSON arrays"
  [ -n "$user" ] || die "Dockerfile: no USER in the final stage"
  tag="$(sed -n 's/^[[:space:]]*image:[[:space:]]*\(ghcr\.io\/nauthera\/nauthera-operator:[^[:space:]]*\).*/\1/p' \
    "$root/deploy/operator.yaml" | head -n 1)"
  [ -n "$tag" ] || die "deploy/operator.yaml names no ghcr.io/nauthera/nauthera-operator image"

  local binary="${NAUTHERA_OPERATOR_BINARY:-}"
  if [ -z "$binary" ]; then
    say "cargo build --release -p nauthera-operator"
    binary="$(cd "$root" && cargo build --release --locked -p nauthera-operator --message-format json-render-diagnostics |
      python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "nauthera-operator" and m.get("executable"):
        print(m["executable"])')"
  fi
  [ -x "$binary" ] || die "no operator binary (${binary:-none}); NAUTHERA_OPERATOR_BINARY names one"

  local rootfs="$dir/node/operator-rootfs" target
  target="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])[0])' "$entrypoint")"
  rm -rf "$rootfs"
  mkdir -p "$rootfs$(dirname "$target")" "$rootfs/etc/ssl/certs" "$rootfs/tmp"
  chmod 1777 "$rootfs/tmp"
  install -m 0755 "$binary" "$rootfs$target"
  # Each library at the path ldd resolved it to (the loader at its absolute path, the
  # one the binary's PT_INTERP names), symlinks followed.
  local lib
  while read -r lib; do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done < <(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
  cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' \
    >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"

  python3 "$here/node/archive.py" "$rootfs" "$tag" "$dir/node/operator-image.tar" \
    --user "$user" --entrypoint "$entrypoint" --cmd "$cmd"
  ctr --address "$dir/node/containerd.sock" -n k8s.io images import "$dir/node/operator-image.tar" >/dev/null
  say "$tag ($(du -h "$dir/node/operator-image.tar" | cut -f1), user $user) on the node in $((SECONDS - started)) s"
}

case "${1:-}" in
  "" | -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  *) image "$1" ;;
esac
