#!/bin/busybox sh
# /init of the kernel-matrix guest (busybox sh; see matrix.sh). Mounts what
# the agent and the tests expect, loads the carried modules, runs each test
# with a time limit and prints, on the serial console:
#   IG-BOOTED uptime=S          when user space starts
#   IG-KERNEL release=... ...   what this kernel offers
#   IG-BEGIN NAME / IG-RESULT test=NAME status=pass|fail rc=N secs=S
#   IG-VARIANT probe=P variant=V   (from the agent's /metrics, e2e_files)
#   IG-DONE                     then powers off
export PATH=/ig:/bin:/sbin:/usr/bin:/usr/sbin
/bin/busybox --install -s
rm -f /sbin/ip /bin/ip # iproute2 ip is /ig/ip
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo "IG-BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)"

up() { cut -d' ' -f1 /proc/uptime; }
has() { [ -e "$1" ] && echo yes || echo no; }
echo "IG-KERNEL release=$(uname -r) btf=$(has /sys/kernel/btf/vmlinux)" \
	"kprobes=$(has /sys/bus/event_source/devices/kprobe/type)" \
	"sock_send_length=$(has /sys/kernel/tracing/events/sock/sock_send_length)"

for m in $(cat /lib/modules/load.order); do
	insmod "/lib/modules/$m" || echo "IG-WARN insmod $m failed"
done
ip link set lo up
ulimit -l unlimited
export CI IG_TEST_VARIANTS HOME=/tmp
cd /tmp

for t in $(cat /lib/modules/tests); do
	echo "IG-BEGIN $t"
	t0=$(up)
	timeout 300 "/ig/$t" </dev/null 2>&1
	rc=$?
	t1=$(up)
	st=fail
	[ $rc = 0 ] && st=pass
	echo "IG-RESULT test=$t status=$st rc=$rc secs=$(echo "$t0 $t1" | awk '{ printf "%d", $2 - $1 + 0.5 }')"
done
echo "IG-DONE uptime=$(up)"
sync
poweroff -f
