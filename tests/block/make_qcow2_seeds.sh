#!/usr/bin/env bash
# Regenerates the fuzz seeds in tests/fuzz/corpus/qcow2/: small qcow2 images
# (512-byte clusters, so each is a few KiB) made by qemu-img and qemu-io,
# covering v2 and v3, data, zero clusters, zlib and zstd compression and a
# backing file reference.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=tests/fuzz/corpus/qcow2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
q() { qemu-img "$@" >/dev/null; }
io() { qemu-io -c "$2" "$1" >/dev/null; }

q create -f qcow2 -o cluster_size=512 "$out/empty_v3.qcow2" 64K
q create -f qcow2 -o cluster_size=512,compat=0.10 "$tmp/v2.qcow2" 64K
io "$tmp/v2.qcow2" "write -P 0x33 1000 3000"
cp "$tmp/v2.qcow2" "$out/data_v2.qcow2"
q create -f qcow2 -o cluster_size=512 "$tmp/d.qcow2" 64K
io "$tmp/d.qcow2" "write -P 0x11 0 4k"
io "$tmp/d.qcow2" "write -z 1k 1k"
io "$tmp/d.qcow2" "discard 3k 512"
cp "$tmp/d.qcow2" "$out/data_zero_v3.qcow2"
head -c 8192 /dev/urandom >"$tmp/r.raw"
{ yes qcow2 || true; } | head -c 8192 >>"$tmp/r.raw"
for c in zlib zstd; do
    q convert -c -O qcow2 -o cluster_size=512,compression_type=$c "$tmp/r.raw" "$out/compressed_$c.qcow2"
done
q create -f qcow2 -o cluster_size=512 -u -b base.raw -F raw "$out/backing_raw.qcow2" 64K
q create -f qcow2 -o cluster_size=4096,refcount_bits=8 "$out/refcount8.qcow2" 1M
io "$out/refcount8.qcow2" "write -P 0x44 4k 8k"
ls -l "$out"
