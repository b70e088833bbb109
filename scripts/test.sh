#!/usr/bin/env bash
# The whole test suite: installs test dependencies, builds, runs every test
# (unit, integration on this kernel, fuzz corpus replay), then builds again with
# AddressSanitizer + UndefinedBehaviorSanitizer and runs the suite again.
# Tests labelled `system` (container image, kernel matrix: slow, and nothing in
# them is sanitizer-relevant) run in the first leg only.
# .ci/run runs exactly this (README's second Quick start command), then
# scripts/fresh-check.sh (both README commands in a fresh Debian 12 root).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash scripts/install-deps.sh --test
jobs=$(nproc)

echo "== format (clang-format, .clang-format) =="
git ls-files '*.c' '*.h' | grep -v '^bpf/vmlinux.h$' | xargs clang-format --dry-run -Werror

echo "== build (RelWithDebInfo) =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIG_TESTS=ON >/dev/null
cmake --build build -j"$jobs"
echo "== tests =="
(cd build && ctest --output-on-failure --no-tests=error)

echo "== build (ASan + UBSan) =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DIG_SANITIZE=ON -DIG_TESTS=ON -DCMAKE_C_COMPILER=clang >/dev/null
cmake --build build-asan -j"$jobs"
echo "== tests under ASan + UBSan (without the label system: QEMU, images) =="
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --output-on-failure --no-tests=error -LE system)
