#!/usr/bin/env bash
# Fetches ONNX Runtime into the project cache.
#
#   scripts/fetch-ort.sh VERSION DEST_DIR
#       the CPU build, from the npm package onnxruntime-node (it ships
#       bin/napi-v6/linux/x64/libonnxruntime.so.1), into DEST_DIR.
#   scripts/fetch-ort.sh --gpu VERSION DEST_DIR
#       the CUDA 13 build, from PyPI's onnxruntime-gpu==VERSION wheel
#       (cp312, manylinux_2_28_x86_64; pip download --no-deps): its
#       onnxruntime/capi/ libraries libonnxruntime.so.VERSION (installed as
#       libonnxruntime.so.1), libonnxruntime_providers_shared.so and
#       libonnxruntime_providers_cuda.so, into DEST_DIR. With
#       DARTC_ORT_GPU_WHEEL=path/to/onnxruntime_gpu-*.whl the wheel is read
#       from that file instead (a host without network).
#       The CUDA provider also needs CUDA 13 (cudart, cublas, cublasLt,
#       curand), cuDNN 9 and an NVIDIA driver at run time; `dartc version`
#       says which of them it finds.
set -euo pipefail
gpu=0
if [ "${1:-}" = "--gpu" ]; then gpu=1; shift; fi
version=${1:?version}
dest=${2:?destination directory}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# sha256 of the libraries as the registries publish them for 1.30.0 (npm
# onnxruntime-node; PyPI onnxruntime-gpu, cp312 manylinux_2_28_x86_64). A
# download that differs is refused; another VERSION is not checked.
declare -A want=()
if [ "$version" = 1.30.0 ]; then
	want=(
		[cpu/libonnxruntime.so.1]=ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23
		[gpu/libonnxruntime.so.1]=5a140dc17c8b60b35b2ceab0bb533e65ac54f06a208948417c1f9c31df6afc4c
		[gpu/libonnxruntime_providers_shared.so]=086ec1d5388f64153d9c63470d126693db9a182c8ce236d3a1119068471b8a0d
		[gpu/libonnxruntime_providers_cuda.so]=35da2e7ed0dd0d1aec5cdb16ce11a51d06c0c48cf62d1b1c9332946a4fae14fc
	)
fi
# verify KEY FILE: FILE's sha256 must be want[KEY] when one is pinned.
verify() {
	local sum=${want[$1]:-}
	[ -n "$sum" ] || return 0
	local got
	got=$(sha256sum "$2" | cut -d' ' -f1)
	if [ "$got" != "$sum" ]; then
		echo "fetch-ort: $2 has sha256 $got, want $sum for ${1#*/} $version: the download is corrupt or not the published one; retry" >&2
		exit 1
	fi
}

if [ "$gpu" = 0 ]; then
	lib="$dest/libonnxruntime.so.1"
	[ -s "$lib" ] && exit 0
	command -v npm >/dev/null || { echo "fetch-ort: npm is needed to fetch onnxruntime-node@$version (apt-get install npm)" >&2; exit 1; }
	echo "fetch-ort: downloading onnxruntime-node@$version from the npm registry" >&2
	(cd "$tmp" && npm pack --silent "onnxruntime-node@$version" >/dev/null)
	tar -xzf "$tmp/onnxruntime-node-$version.tgz" -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
	verify cpu/libonnxruntime.so.1 "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1"
	mkdir -p "$dest"
	# Rename into place so that an interrupted fetch never leaves a partial library.
	mv "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$lib.tmp"
	mv "$lib.tmp" "$lib"
	echo "fetch-ort: $lib" >&2
	exit 0
fi

cuda="$dest/libonnxruntime_providers_cuda.so"
[ -s "$cuda" ] && [ -s "$dest/libonnxruntime.so.1" ] && [ -s "$dest/libonnxruntime_providers_shared.so" ] && exit 0
command -v python3 >/dev/null || { echo "fetch-ort: python3 is needed to fetch and unpack the onnxruntime-gpu wheel (apt-get install python3 python3-pip)" >&2; exit 1; }
wheel=${DARTC_ORT_GPU_WHEEL:-}
if [ -z "$wheel" ]; then
	pip=(python3 -m pip)
	if ! python3 -m pip --version >/dev/null 2>&1; then
		p=$(command -v pip3 || command -v pip || true)
		[ -n "$p" ] || { echo "fetch-ort: pip is needed to download onnxruntime-gpu==$version from PyPI (apt-get install python3-pip, or set DARTC_ORT_GPU_WHEEL to a downloaded wheel)" >&2; exit 1; }
		pip=("$p")
	fi
	echo "fetch-ort: downloading onnxruntime-gpu==$version (CUDA 13, about 250 MB) from PyPI" >&2
	"${pip[@]}" download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
		--platform manylinux_2_28_x86_64 "onnxruntime-gpu==$version" -d "$tmp" >&2
	wheel=$(ls "$tmp"/onnxruntime_gpu-"$version"-*.whl)
fi
[ -s "$wheel" ] || { echo "fetch-ort: no wheel at $wheel" >&2; exit 1; }
# Unpacked with Python's zipfile: no unzip needed.
python3 - "$wheel" "$tmp/x" "$version" <<'PY' || { echo "fetch-ort: $wheel lacks onnxruntime/capi/libonnxruntime.so.$version or the CUDA provider libraries" >&2; exit 1; }
import sys, zipfile
wheel, out, version = sys.argv[1:]
names = ["onnxruntime/capi/libonnxruntime.so." + version, "onnxruntime/capi/libonnxruntime_providers_shared.so",
         "onnxruntime/capi/libonnxruntime_providers_cuda.so"]
with zipfile.ZipFile(wheel) as z:
    for n in names:
        z.extract(n, out)
PY
mkdir -p "$dest"
capi="$tmp/x/onnxruntime/capi"
# wheel name : installed name; the CUDA provider last (see below).
libs=("libonnxruntime.so.$version:libonnxruntime.so.1"
	"libonnxruntime_providers_shared.so:libonnxruntime_providers_shared.so"
	"libonnxruntime_providers_cuda.so:libonnxruntime_providers_cuda.so")
# All three are checked before any is installed.
for f in "${libs[@]}"; do
	verify "gpu/${f##*:}" "$capi/${f%%:*}"
done
# Each file lands under a temporary name, then is renamed: an interrupted
# fetch leaves no partial library; the CUDA provider goes last, so its
# presence means the set is complete.
for f in "${libs[@]}"; do
	src=${f%%:*} dst=${f##*:}
	mv "$capi/$src" "$dest/$dst.tmp"
	mv "$dest/$dst.tmp" "$dest/$dst"
done
echo "fetch-ort: $dest (libonnxruntime.so.1 with the CUDA 13 provider)" >&2
