#!/usr/bin/env bash
# The kernel matrix: the probe unit tests and one end-to-end test on other
# kernels than the one this machine runs, under QEMU (TCG: no /dev/kvm).
#
# For each kernel of kernels.list (or those named on the command line):
#   1. fetch: the suite's current linux-image package from Debian's archive
#      with a private apt configuration (the machine's sources are never
#      touched), cached under $IG_KERNEL_CACHE and reused across runs;
#   2. initramfs: busybox, iproute2's ip, the agent, the aggregator, the
#      probe unit tests and the in-guest end-to-end tests (e2e_files: the
#      four syscall/socket probes; e2e_capture: dns + tls on the capture
#      layer) with every shared
#      library they load (ldd), plus the modules the tests need (veth) from
#      the same package's /lib/modules, decompressed, with their
#      dependencies;
#   3. boot under qemu-system-x86_64 with a time limit; guest-init.sh runs
#      the tests and prints one "IG-RESULT" line per test and one
#      "IG-VARIANT" line per probe (the variant the feature probes chose)
#      on the serial console;
#   4. report: pass/fail per test, variants, boot and run times, per kernel.
#
# usage: matrix.sh [-j N] [KERNEL...]   (KERNEL: a name of kernels.list)
# env:   IG_BUILD_DIR (default <source>/build), IG_KERNEL_CACHE (default
#        /var/cache/ingrain-kernels), IG_KERNEL_TIMEOUT (seconds per boot,
#        default 480), IG_KERNEL_TESTS (space-separated subset of the guest
#        tests), IG_KERNEL_TEST_VARIANTS (default|all, see below),
#        IG_KERNEL_WORK (initramfs and logs, default <build>/kernels),
#        IG_KERNEL_MIRROR (default http://deb.debian.org/debian), CI=true
#        (a kernel that cannot be fetched fails instead of being skipped).
# exit:  0 all passed, 1 a test failed or a kernel could not be run, 77
#        nothing could run outside CI (skipped).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${IG_BUILD_DIR:-$src/build}
cache=${IG_KERNEL_CACHE:-/var/cache/ingrain-kernels}
timeout_s=${IG_KERNEL_TIMEOUT:-480}
guest_tests=${IG_KERNEL_TESTS:-"test_probe_files test_probe_tcp test_probe_traffic test_probe_file_io e2e_files e2e_capture"}
# default: each probe test runs its cases once, under the variant the
# kernel's feature probes choose (the faster ones: the host's run covers the
# forced tracepoint/tp_btf groups); all: also under each forced variant
# (about twice the time).
test_variants=${IG_KERNEL_TEST_VARIANTS:-default}
mirror=${IG_KERNEL_MIRROR:-http://deb.debian.org/debian}
jobs=2
while getopts "j:" o; do
	case $o in
	j) jobs=$OPTARG ;;
	*) echo "usage: $0 [-j N] [KERNEL...]" >&2 && exit 2 ;;
	esac
done
shift $((OPTIND - 1))

is_ci() { [ "${CI:-}" = true ]; }
say() { printf '[kernels] %s\n' "$*" >&2; }
# A prerequisite is missing: fail under CI=true, skip (77) elsewhere.
missing() {
	if is_ci; then
		say "FAIL: $1 (a missing prerequisite fails under CI=true)"
		exit 1
	fi
	say "SKIPPED: $1; $2"
	exit 77
}

for c in qemu-system-x86_64 cpio apt-get dpkg-deb ldd xz zstd depmod flock; do
	command -v "$c" >/dev/null || missing "$c is not installed" "bash scripts/install-deps.sh --test"
done
[ -x /bin/busybox ] && { ldd /bin/busybox 2>&1 || true; } | grep -q "not a dynamic" ||
	missing "a static busybox (/bin/busybox, Debian busybox-static) is not installed" \
		"bash scripts/install-deps.sh --test"
command -v ip >/dev/null || missing "iproute2's ip is not installed" "apt-get install iproute2"
for b in node-agent/ingrain-agent aggregator/ingrain-aggregator; do
	[ -x "$build/$b" ] || missing "$build/$b is not built" "cmake --build $build"
done
for t in $guest_tests; do
	case $t in
	test_*) [ -x "$build/tests/$t" ] || missing "$build/tests/$t is not built" "cmake --build $build" ;;
	esac
done

# The table: "name suite" lines; the names asked for, or all.
declare -A suite_of=() expect_of=()
order=()
while read -r name suite expect _; do
	case $name in '' | '#'*) continue ;; esac
	suite_of[$name]=$suite
	expect_of[$name]=$expect
	order+=("$name")
done <"$here/kernels.list"
if [ $# -gt 0 ]; then
	for k in "$@"; do
		[ -n "${suite_of[$k]:-}" ] || {
			say "unknown kernel '$k': kernels.list has ${order[*]}"
			exit 2
		}
	done
	order=("$@")
fi

work=${IG_KERNEL_WORK:-$build/kernels}
mkdir -p "$work"
mkdir -p "$cache" 2>/dev/null && [ -w "$cache" ] ||
	missing "the kernel cache $cache cannot be written" "run as root or set IG_KERNEL_CACHE"
exec 9>"$cache/.lock" # one fetcher at a time (parallel runs, other worktrees)

# --- 1. fetch ---------------------------------------------------------------

# Prints the directory holding vmlinuz, config and lib/modules of the suite's
# current kernel, downloading and unpacking it when not cached. Uses the
# last fetched one when the archive cannot be reached.
fetch_kernel() {
	local suite=$1 pkg deb kdir
	local st="$cache/apt/$suite"
	mkdir -p "$st/lists/partial" "$st/cache/archives/partial"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" \
		>"$st/sources.list"
	local -a o=(-q -o "Dir::Etc::sourcelist=$st/sources.list" -o "Dir::Etc::sourceparts=/nonexistent"
		-o "Dir::State::lists=$st/lists" -o "Dir::Cache=$st/cache" -o "Dir::State::status=/dev/null"
		-o "Acquire::Retries=2" -o "Acquire::http::Timeout=30")
	flock 9
	if timeout 120 apt-get "${o[@]}" update >"$st/update.log" 2>&1 &&
		pkg=$(apt-cache "${o[@]}" depends linux-image-amd64 2>/dev/null |
			awk '/Depends: linux-image-[0-9]/ { print $2; exit }') && [ -n "$pkg" ]; then
		echo "$pkg" >"$st/current"
	elif [ -s "$st/current" ]; then
		pkg=$(cat "$st/current")
		say "$suite: the archive did not answer (see $st/update.log); using the cached $pkg"
	else
		flock -u 9
		return 1
	fi
	kdir="$cache/$pkg"
	if [ ! -e "$kdir/.complete-v2" ]; then
		say "$suite: downloading $pkg"
		rm -rf "$kdir" "$st/dl"
		mkdir -p "$st/dl"
		if ! (cd "$st/dl" && timeout 600 apt-get "${o[@]}" download "$pkg" >"$st/download.log" 2>&1); then
			flock -u 9
			say "$suite: apt-get download $pkg failed (see $st/download.log)"
			return 1
		fi
		deb=$(ls "$st/dl"/*.deb)
		mkdir -p "$kdir.tmp"
		dpkg-deb -x "$deb" "$kdir.tmp"
		mkdir -p "$kdir/lib"
		mv "$kdir.tmp"/boot/vmlinuz-* "$kdir/vmlinuz"
		mv "$kdir.tmp"/boot/config-* "$kdir/config"
		mv "$kdir.tmp"/lib/modules "$kdir/lib/modules" 2>/dev/null ||
			mv "$kdir.tmp"/usr/lib/modules "$kdir/lib/modules"
		rm -rf "$kdir.tmp" "$st/dl"
		# The package has no modules.dep (its postinst runs depmod).
		depmod -b "$kdir" "$(ls "$kdir/lib/modules")"
		touch "$kdir/.complete-v2"
	fi
	flock -u 9
	echo "$kdir"
}

# --- 2. initramfs -------------------------------------------------------------

# The part every kernel shares: busybox, ip, the binaries and their libraries.
build_common_cpio() {
	local root="$work/common-root" out="$work/common.cpio"
	rm -rf "$root"
	mkdir -p "$root"/{bin,sbin,lib,lib64,etc,proc,sys,dev,tmp,run,ig,usr/bin,usr/sbin,var/tmp}
	cp /bin/busybox "$root/bin/busybox"
	# bash as /bin/sh: the tests' system() calls must find iproute2's ip
	# in PATH, and busybox sh runs its own applets first.
	cp /bin/bash "$root/bin/bash"
	ln -s bash "$root/bin/sh"
	local -a bins=("$build/node-agent/ingrain-agent" "$build/aggregator/ingrain-aggregator"
		/bin/bash "$(command -v ip)")
	for t in $guest_tests; do
		case $t in test_*) bins+=("$build/tests/$t") ;; esac
	done
	for b in "${bins[@]}"; do
		[ "$b" = /bin/bash ] || cp "$b" "$root/ig/"
		# Every library at the path the loader looks for it.
		ldd "$b" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }' | while read -r lib; do
			[ -e "$root$lib" ] && continue
			mkdir -p "$root$(dirname "$lib")"
			cp -L "$lib" "$root$lib"
		done
	done
	cp "$here/guest-init.sh" "$root/init"
	cp "$here/guest-e2e.sh" "$root/ig/e2e_files"
	cp "$here/guest-e2e-capture.sh" "$root/ig/e2e_capture"
	cp "$here/guest-lib.sh" "$root/ig/guest-lib.sh"
	# The capture test's ClientHello: the integration tests' 1.8 KB hello.
	python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import tls_hello
sys.stdout.buffer.write(tls_hello.client_hello("kernel-matrix.example"))' "$src/tests/integration" >"$root/ig/hello.bin"
	chmod +x "$root/init" "$root/ig/e2e_files" "$root/ig/e2e_capture"
	echo "root:x:0:0:root:/:/bin/sh" >"$root/etc/passwd"
	echo "root:x:0:" >"$root/etc/group"
	echo "127.0.0.1 localhost" >"$root/etc/hosts"
	(cd "$root" && find . | cpio -o -H newc --quiet) >"$out"
	rm -rf "$root"
}

# Modules a test needs, with what they depend on (modules.dep), in load
# order, decompressed: busybox insmod does not read every compression.
want_modules="veth"
build_kernel_cpio() {
	local kdir=$1 out=$2
	local root="$out.root" rel
	rel=$(ls "$kdir/lib/modules")
	rm -rf "$root"
	mkdir -p "$root/lib/modules"
	local -a list=()
	local -A seen=()
	add_module() { # name: its dependencies first, then itself
		local m=$1 line path deps d
		line=$(grep -E "(^|/)${m}\.ko(\.[a-z]+)?:" "$kdir/lib/modules/$rel/modules.dep" || true)
		if [ -z "$line" ]; then
			# Built in (or absent: the test that needs it will say).
			grep -qE "/${m}\.ko" "$kdir/lib/modules/$rel/modules.builtin" 2>/dev/null ||
				say "module $m is neither built into $rel nor in its modules.dep"
			return 0
		fi
		path=${line%%:*}
		deps=${line#*:}
		for d in $deps; do
			d=${d##*/}
			add_module "${d%%.ko*}"
		done
		[ -n "${seen[$path]:-}" ] && return 0
		seen[$path]=1
		list+=("$path")
	}
	for m in $want_modules; do add_module "$m"; done
	: >"$root/lib/modules/load.order"
	for p in "${list[@]}"; do
		local f="$kdir/lib/modules/$rel/$p" base
		base=$(basename "${p%%.ko*}").ko
		case $p in
		*.ko.xz) xz -dc "$f" >"$root/lib/modules/$base" ;;
		*.ko.zst) zstd -qdc "$f" >"$root/lib/modules/$base" ;;
		*.ko.gz) gzip -dc "$f" >"$root/lib/modules/$base" ;;
		*) cp "$f" "$root/lib/modules/$base" ;;
		esac
		echo "$base" >>"$root/lib/modules/load.order"
	done
	echo "$guest_tests" >"$root/lib/modules/tests"
	(cd "$root" && find . | cpio -o -H newc --quiet) >"$out.kernel"
	cat "$work/common.cpio" "$out.kernel" >"$out"
	rm -rf "$root" "$out.kernel"
}

# --- 3. boot --------------------------------------------------------------------

# run_kernel name: fetch, build, boot; writes $work/<name>/{console.log,result}.
run_kernel() {
	local name=$1 kdir t0 t1 rc
	local suite=${suite_of[$name]} d="$work/$name"
	rm -rf "$d"
	mkdir -p "$d"
	if ! kdir=$(fetch_kernel "$suite"); then
		echo "status=unfetchable" >"$d/result"
		return 0
	fi
	echo "package=$(basename "$kdir")" >"$d/result"
	build_kernel_cpio "$kdir" "$d/initramfs.cpio"
	t0=$(date +%s.%N)
	# -cpu max: every instruction set extension TCG can emulate; 2 vCPUs
	# (the tests run per-CPU maps and cross-CPU wakeups), no network, no
	# disk: results come back on the serial console. no_timer_check: on a
	# loaded host the emulated timer can miss the IO-APIC check (a panic
	# at 0.07 s); a kernel that still does not reach user space is booted
	# once more.
	for attempt in 1 2; do
		timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 -machine q35 -cpu max -smp 2 \
			-m 2048 -nographic -no-reboot -nic none -kernel "$kdir/vmlinuz" \
			-initrd "$d/initramfs.cpio" \
			-append "console=ttyS0 panic=-1 no_timer_check quiet loglevel=4 CI=${CI:-} IG_TEST_VARIANTS=$test_variants" \
			</dev/null >"$d/console.log" 2>&1 && rc=0 || rc=$?
		grep -qa IG-BOOTED "$d/console.log" && break
		[ $attempt = 1 ] && cp "$d/console.log" "$d/console.first-boot.log" &&
			say "$name: the kernel did not reach user space (qemu exit $rc); booting again"
	done
	t1=$(date +%s.%N)
	{
		echo "qemu_rc=$rc"
		echo "wall_s=$(echo "$t1 $t0" | awk '{ printf "%.1f", $1 - $2 }')"
	} >>"$d/result"
}

# --- main --------------------------------------------------------------------------

say "build: $build  cache: $cache  kernels: ${order[*]}  jobs: $jobs  tests: $guest_tests (variants: $test_variants)"
build_common_cpio

running=0
for k in "${order[@]}"; do
	run_kernel "$k" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait -n || true
		running=$((running - 1))
	fi
done
wait

# --- 4. report ----------------------------------------------------------------------
fail=0
ran=0
printf '\n%-6s %-28s %-7s %8s %8s  %s\n' kernel package status boot_s total_s tests >&2
for k in "${order[@]}"; do
	d="$work/$k"
	status=$(sed -n 's/^status=//p' "$d/result" 2>/dev/null | tail -1)
	pkg=$(sed -n 's/^package=//p' "$d/result" 2>/dev/null)
	if [ "$status" = unfetchable ]; then
		say "$k: the ${suite_of[$k]} kernel could not be fetched from $mirror"
		is_ci && fail=1
		printf '%-6s %-28s %-7s\n' "$k" "-" unfetchable >&2
		continue
	fi
	ran=1
	log="$d/console.log"
	tr -d '\r' <"$log" >"$log.txt"
	wall=$(sed -n 's/^wall_s=//p' "$d/result")
	qrc=$(sed -n 's/^qemu_rc=//p' "$d/result")
	boot=$(sed -n 's/.*IG-BOOTED uptime=\([0-9.]*\).*/\1/p' "$log.txt" | head -1)
	results=$(grep -a '^IG-RESULT ' "$log.txt" || true)
	summary=""
	kfail=0
	for t in $guest_tests; do
		line=$(printf '%s\n' "$results" | grep -a " test=$t " || true)
		st=$(printf '%s' "$line" | sed -n 's/.* status=\([a-z]*\).*/\1/p')
		secs=$(printf '%s' "$line" | sed -n 's/.* secs=\([0-9]*\).*/\1/p')
		[ -n "$st" ] || st=missing
		[ "$st" = pass ] || kfail=1
		summary+="$t=$st${secs:+(${secs}s)} "
	done
	# The variants the feature probes chose must be the table's.
	for pv in ${expect_of[$k]//,/ }; do
		if ! grep -qa "^IG-VARIANT probe=${pv%%=*} variant=${pv#*=}\$" "$log.txt"; then
			say "$k: probe ${pv%%=*} did not run variant ${pv#*=} (kernels.list)"
			kfail=1
		fi
	done
	if grep -qa '^IG-DONE' "$log.txt"; then
		kstatus=$([ $kfail = 0 ] && echo pass || echo FAIL)
	elif [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
		kstatus=TIMEOUT
		kfail=1
	else
		kstatus=FAIL
		kfail=1
	fi
	[ $kfail = 0 ] || fail=1
	printf '%-6s %-28s %-7s %8s %8s  %s\n' "$k" "$pkg" "$kstatus" "${boot:--}" "$wall" "$summary" >&2
	grep -a '^IG-VARIANT ' "$log.txt" | sed "s/^IG-VARIANT /         variant: /" >&2 || true
	grep -a '^IG-KERNEL ' "$log.txt" | sed "s/^IG-KERNEL /         kernel: /" >&2 || true
	if [ $kfail != 0 ]; then
		say "$k: console log $log.txt; failing tests' output:"
		awk '/^IG-BEGIN /{ name=$2; buf="" } { buf = buf $0 "\n" } /^IG-RESULT / && !/status=pass/ { printf "%s", buf } /^IG-RESULT /{ buf="" }' \
			"$log.txt" | tail -n 150 >&2
		if ! grep -qa '^IG-BOOTED' "$log.txt"; then
			tail -n 60 "$log.txt" >&2
		fi
	fi
done
if [ $ran = 0 ] && [ $fail = 0 ]; then
	missing "no kernel of the matrix could be fetched from $mirror" "check the network to Debian's archive"
fi
exit $fail
