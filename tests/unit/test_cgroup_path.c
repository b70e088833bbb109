/* cgroup_path: the path parser against real-world cgroup paths, the id/path
 * helpers against real directories.
 *
 * Every row of the table names where the path was seen: other agents' and
 * runtimes' test fixtures, Kubernetes bug reports, runtime sources. Ids in
 * rows marked "layout from" are the row's source's layout filled with an id
 * from the same source. Malformed rows are derived from a real row (named)
 * by truncating it or breaking its id.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup_path.h"

#define H(x) x /* marks a 64-hex container id in the table */

struct row {
	const char *path;
	enum ig_cg_scope scope;
	const char *runtime;
	const char *container_id;
	const char *pod_uid;
	enum ig_cg_qos qos;
	int conmon;
	int malformed;
	const char *source;
};

#define UNK IG_CG_UNKNOWN
#define HOST IG_CG_HOST
#define CTR IG_CG_CONTAINER
#define POD IG_CG_POD
#define NOQ IG_QOS_NONE
#define GUA IG_QOS_GUARANTEED
#define BUR IG_QOS_BURSTABLE
#define BES IG_QOS_BESTEFFORT

/* clang-format off */
static const struct row rows[] = {
	/* ---- kubelet, systemd driver ---- */
	{ "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-poddd1bf9d1_241d_47f5_8e25_12de83135812.slice/cri-containerd-f45298cd514d1930c4fe3afc4412e59547f7e3148fddd22ca33cefce046eb830.scope",
	  POD, "containerd", H("f45298cd514d1930c4fe3afc4412e59547f7e3148fddd22ca33cefce046eb830"),
	  "dd1bf9d1-241d-47f5-8e25-12de83135812", BES, 0, 0,
	  "neuvector/neuvector share/system/cgroup_test.go TestK8sBottleRocket (containerd, v1 controllers)" },
	{ "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod045b1e35_7f13_11e7_ac42_0050568ffca0.slice/docker-b5b6f2da8008be266864f896f93789762b2ce50792114a5c5f2cc3315af0bc70.scope",
	  POD, "docker", H("b5b6f2da8008be266864f896f93789762b2ce50792114a5c5f2cc3315af0bc70"),
	  "045b1e35-7f13-11e7-ac42-0050568ffca0", BES, 0, 0,
	  "neuvector/neuvector share/system/cgroup_test.go TestDockerIDKubepods2" },
	{ "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod9692aa0e_748e_11e8_8dfa_76d458035df6.slice/docker-abddff03dfd7710c79a750ce3e730365cbb2c8247a974170c1062683bc3e9152.scope/kube-proxy",
	  POD, "docker", H("abddff03dfd7710c79a750ce3e730365cbb2c8247a974170c1062683bc3e9152"),
	  "9692aa0e-748e-11e8-8dfa-76d458035df6", BES, 0, 0,
	  "kontena/pharos-cluster#440 systemd-cgls (kube-proxy's own sub-cgroup)" },
	{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod2942c55e_c9cb_428a_93f4_eaf89c1f3ce0.slice/crio-49f9e8e5395d57c1083996c09e2e6f042d5fe1ec0310facab32f94912b35ce59.scope",
	  POD, "cri-o", H("49f9e8e5395d57c1083996c09e2e6f042d5fe1ec0310facab32f94912b35ce59"),
	  "2942c55e-c9cb-428a-93f4-eaf89c1f3ce0", BUR, 0, 0,
	  "coroot/coroot-node-agent cgroup/cgroup_test.go TestContainerByCgroup (CRI-O)" },
	{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podea19ff5d_943a_4466_a07e_a71e9e50cc62.slice/crio-21572039dd8398ff8272b031fa5422a40165145ab37f2f8794e1e7f844fe8118.scope/container",
	  POD, "cri-o", H("21572039dd8398ff8272b031fa5422a40165145ab37f2f8794e1e7f844fe8118"),
	  "ea19ff5d-943a-4466-a07e-a71e9e50cc62", BUR, 0, 0,
	  "coroot/coroot-node-agent cgroup/cgroup_test.go (crun's nested 'container' leaf)" },
	{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod3e61c214bc3ed9ff81e21474dd6cba17.slice/cri-containerd-c74b0f5062f0bc726cae1e9369ad4a95deed6b298d247f0407475adb23fa3190",
	  POD, "containerd", H("c74b0f5062f0bc726cae1e9369ad4a95deed6b298d247f0407475adb23fa3190"),
	  "3e61c214bc3ed9ff81e21474dd6cba17", BUR, 0, 0,
	  "coroot/coroot-node-agent cgroup/cgroup_test.go (static pod: 32-hex uid; no .scope)" },
	{ "/kubepods.slice/kubepods-pod2d51509a_fcf0_41cc_b535_57cfeeaf73d1.slice/crio-0853fad78812e955b92d871d8d597d9bc598e34320c9edbfab0a73eacf150145.scope/container",
	  POD, "cri-o", H("0853fad78812e955b92d871d8d597d9bc598e34320c9edbfab0a73eacf150145"),
	  "2d51509a-fcf0-41cc-b535-57cfeeaf73d1", GUA, 0, 0,
	  "open-telemetry/opentelemetry-ebpf-instrumentation statagg cgroup index test (guaranteed: no QoS slice)" },
	{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod73dc8baf_43a0_413e_aac2_5eb0868f6c1a.slice/crio-conmon-f52987fbdcc7b29175fb52e01c7917e9d6d2e14550e3a2a7abf739da5a067e31.scope",
	  POD, "cri-o", NULL, "73dc8baf-43a0-413e-aac2-5eb0868f6c1a", BUR, 1, 0,
	  "open-telemetry/opentelemetry-ebpf-instrumentation statagg test, MicroShift CRI-O lab (conmon: pod, no container)" },
	{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod73dc8baf_43a0_413e_aac2_5eb0868f6c1a.slice/crio-c81572302e4a00c05810fc436ebc0952ed7a0806c58a2b7eddbfb58de4539206",
	  POD, "cri-o", H("c81572302e4a00c05810fc436ebc0952ed7a0806c58a2b7eddbfb58de4539206"),
	  "73dc8baf-43a0-413e-aac2-5eb0868f6c1a", BUR, 0, 0,
	  "open-telemetry/opentelemetry-ebpf-instrumentation statagg test (CRI-O sandbox, no .scope: its id, no container name)" },
	{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod73dc8baf_43a0_413e_aac2_5eb0868f6c1a.slice",
	  POD, NULL, NULL, "73dc8baf-43a0-413e-aac2-5eb0868f6c1a", BUR, 0, 0,
	  "open-telemetry/opentelemetry-ebpf-instrumentation statagg test (the pod's own slice)" },
	{ "/kubepods.slice", UNK, NULL, NULL, NULL, NOQ, 0, 0,
	  "open-telemetry/opentelemetry-ebpf-instrumentation statagg test (kubelet's root: no pod; "
	  "kubelet's, not a host-only cgroup, so unknown)" },
	{ "/kubepods.slice/kubepods-besteffort.slice", UNK, NULL, NULL, NULL, NOQ, 0, 0,
	  "open-telemetry/opentelemetry-ebpf-instrumentation statagg test (QoS slice: no pod; "
	  "kubelet's, so unknown, not host)" },
	{ "/system.slice/containerd.service/kubepods-burstable-pod4ed02c0b_0df8_4d14_a30e_fd589ee4143a.slice:cri-containerd:d4a9f9195eaf7e4a729f24151101e1de61f1398677e7b82acfb936dff0b4ce55",
	  POD, "containerd", H("d4a9f9195eaf7e4a729f24151101e1de61f1398677e7b82acfb936dff0b4ce55"),
	  "4ed02c0b-0df8-4d14-a30e-fd589ee4143a", BUR, 0, 0,
	  "coroot/coroot-node-agent cgroup/cgroup_test.go (containerd's unexpanded slice:prefix:id form, v1)" },
	{ "/pod_123-456.slice:crio:49ecc282021562c567a8159ef424a06cdd8637efdca5953de9794eafe29adcad",
	  CTR, "cri-o", H("49ecc282021562c567a8159ef424a06cdd8637efdca5953de9794eafe29adcad"), NULL,
	  NOQ, 0, 0,
	  "falcosecurity/libs test/container_engine/container_parser_cri_crio.ut.cpp cgroupsPath (crictl sandbox, not kubelet)" },
	/* ---- kubelet, cgroupfs driver (and containerd 1.x on cgroup v1) ---- */
	{ "/kubepods/besteffort/pod74c13223-5a00-11e9-b385-42010a80018d/34dc0b5e626f2c5c4c5170e34b10e7654ce36f0fcd532739f4445baabea03376",
	  POD, NULL, H("34dc0b5e626f2c5c4c5170e34b10e7654ce36f0fcd532739f4445baabea03376"),
	  "74c13223-5a00-11e9-b385-42010a80018d", BES, 0, 0,
	  "Qard/container-info test/fixtures/result.js (runtime not in the path: the API fills it)" },
	{ "/kubepods/besteffort/pod0d08203e-255a-11e9-8cd9-0007cb0b2cc8/671a50f5d60566556912f61511d0ec9e4d5c78d53fbc4676727180438bbbbc55/kube-proxy",
	  POD, NULL, H("671a50f5d60566556912f61511d0ec9e4d5c78d53fbc4676727180438bbbbc55"),
	  "0d08203e-255a-11e9-8cd9-0007cb0b2cc8", BES, 0, 0,
	  "coroot/coroot-node-agent cgroup/cgroup_test.go (sub-cgroup below the container)" },
	{ "/kubepods/poda38c12e8-255a-11e9-8cd9-0007cb0b2cc8/32c562ed81a2622b37b80cb216859820ba51bd694f60ee4cf10d07a4011266f8",
	  POD, NULL, H("32c562ed81a2622b37b80cb216859820ba51bd694f60ee4cf10d07a4011266f8"),
	  "a38c12e8-255a-11e9-8cd9-0007cb0b2cc8", GUA, 0, 0,
	  "coroot/coroot-node-agent cgroup/cgroup_test.go (guaranteed, cgroupfs)" },
	{ "/kubepods/burstable/pod9729a196c4723b60ab401eaff722982d/d166c6190614efc91956b78e96d74c3fbc96ca8e91948c36de3bc5b0e7b27d48",
	  POD, NULL, H("d166c6190614efc91956b78e96d74c3fbc96ca8e91948c36de3bc5b0e7b27d48"),
	  "9729a196c4723b60ab401eaff722982d", BUR, 0, 0,
	  "coroot/coroot-node-agent cgroup/cgroup_test.go (static pod, 32-hex uid)" },
	{ "/kubepods/poda48c12e8-255a-11e9-8cd9-0007cb0b2cc8/crio-63425c4a8b4291744a79dd9011fddc7a1f8ffda61f65d72196aa01d00cae2e2e",
	  POD, "cri-o", H("63425c4a8b4291744a79dd9011fddc7a1f8ffda61f65d72196aa01d00cae2e2e"),
	  "a48c12e8-255a-11e9-8cd9-0007cb0b2cc8", GUA, 0, 0,
	  "coroot/coroot-node-agent cgroup/cgroup_test.go (CRI-O, cgroupfs)" },
	{ "0::/kubepods/besteffort/pod1fe19bf5-e8ef-11e8-900c-52daee5a874d/da31e536c8d61304a6d5998d163d12400a7a9a1003e1d86369e8fadb022fc17d\n",
	  POD, NULL, H("da31e536c8d61304a6d5998d163d12400a7a9a1003e1d86369e8fadb022fc17d"),
	  "1fe19bf5-e8ef-11e8-900c-52daee5a874d", BES, 0, 0,
	  "neuvector/neuvector share/system/cgroup_test.go TestDockerIDKubepods3, as a /proc/<pid>/cgroup v2 line" },
	/* ---- nested: kind, minikube (the node is itself a container) ---- */
	{ "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod6dc88073_2128_40d6_9dbc_0ba508da7fe8.slice/cri-containerd-123cd1db937c3c2d0d7772ef9b0a1c4b0b3dcfcb6b889452a90b2fcb43eae43a.scope",
	  POD, "containerd", H("123cd1db937c3c2d0d7772ef9b0a1c4b0b3dcfcb6b889452a90b2fcb43eae43a"),
	  "6dc88073-2128-40d6-9dbc-0ba508da7fe8", BES, 0, 0,
	  "open-telemetry/opentelemetry-ebpf-instrumentation statagg test kindFixture (--cgroup-root=/kubelet)" },
	{ "/kubelet/kubepods/burstable/pod73dc8baf-43a0-413e-aac2-5eb0868f6c1a/f52987fbdcc7b29175fb52e01c7917e9d6d2e14550e3a2a7abf739da5a067e31",
	  POD, NULL, H("f52987fbdcc7b29175fb52e01c7917e9d6d2e14550e3a2a7abf739da5a067e31"),
	  "73dc8baf-43a0-413e-aac2-5eb0868f6c1a", BUR, 0, 0,
	  "open-telemetry/opentelemetry-ebpf-instrumentation statagg test kindCgroupfsFixture" },
	{ "/docker/d6701ec289c56e4391acb11d07474b3139466857a305490575508a8b7a9fcf22/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod2ca4a155_3599_498d_bb9d_4446693fa3ea.slice/crio-0ba8ac17e4e7a31fb82279503552fe94e64bab4745bf6fd2ff231e7c8ca8bed0.scope",
	  POD, "cri-o", H("0ba8ac17e4e7a31fb82279503552fe94e64bab4745bf6fd2ff231e7c8ca8bed0"),
	  "2ca4a155-3599-498d-bb9d-4446693fa3ea", BES, 0, 0,
	  "kubernetes/minikube#11280 systemctl status (docker driver + CRI-O: the node container is forgotten)" },
	{ "/system.slice/docker-3350ade4226f0adcd9e4e9545d7c2a16a5aa362d12315f2a88e2024cea1246cf.scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-podb6a16766_05ee_446a_8ee5_ff96a817f47c.slice/cri-containerd-679f3691f7f1b20198548be43b86f265f9fff9be0ac4c973638f5ee89decbca9.scope",
	  POD, "containerd", H("679f3691f7f1b20198548be43b86f265f9fff9be0ac4c973638f5ee89decbca9"),
	  "b6a16766-05ee-446a-8ee5-ff96a817f47c", BES, 0, 0,
	  "kind node on a systemd docker host without cgroup namespaces (shape seen in a public Python correlation test)" },
	{ "/user.slice/user-1001.slice/user@1001.service/user.slice/cri-containerd-6938564e754ad86269a536ed19172af0eff5f7ff0a41eefc5b433a76f1f38f16.scope",
	  CTR, "containerd", H("6938564e754ad86269a536ed19172af0eff5f7ff0a41eefc5b433a76f1f38f16"), NULL,
	  NOQ, 0, 0,
	  "kubelet 'Rootless' feature-gate patch by Akihiro Suda (no pod slice: the pod comes from the API by container id)" },
	/* ---- containers outside Kubernetes ---- */
	{ "/system.slice/docker-9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3d.scope",
	  CTR, "docker", H("9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3d"), NULL,
	  NOQ, 0, 0, "neuvector/neuvector share/system/cgroup_test.go TestDockerIDCentOS" },
	{ "/docker/31cb02944da7a12196a193cf0e0f6c226d7c453a1db62e65ba98287593a2ee30",
	  CTR, "docker", H("31cb02944da7a12196a193cf0e0f6c226d7c453a1db62e65ba98287593a2ee30"), NULL,
	  NOQ, 0, 0, "neuvector/neuvector share/system/cgroup_test.go TestDockerIDUbuntu" },
	{ "/4f797c539e6c745de61a93ca3ff892358ecbcaccd8414d5db545c38428142970",
	  CTR, NULL, H("4f797c539e6c745de61a93ca3ff892358ecbcaccd8414d5db545c38428142970"), NULL,
	  NOQ, 0, 0, "neuvector/neuvector share/system/cgroup_test.go TestDockerIDDebian (bare id at the root)" },
	{ "/docker/a9a5ad238e59234193ee7ec3fcff5e735b3708ea1068826952255b69e3cfa413/docker/ec08435e04266c5ba381fccbb829f626d11d8ddf5f8f547263c7a2d79ab4787a",
	  CTR, "docker", H("ec08435e04266c5ba381fccbb829f626d11d8ddf5f8f547263c7a2d79ab4787a"), NULL,
	  NOQ, 0, 0, "neuvector/neuvector share/system/cgroup_test.go TestDockerIDRancherOS (innermost wins)" },
	{ "/machine.slice/libpod-6dd05e91f00f99281f70b1fd90a29e5cc30b0dab243cb7cfb6153d8017872394.scope",
	  CTR, "podman", H("6dd05e91f00f99281f70b1fd90a29e5cc30b0dab243cb7cfb6153d8017872394"), NULL,
	  NOQ, 0, 0, "layout from falcosecurity/libs container_engine/docker/podman.cpp; id from a podman --log-level=debug run" },
	{ "/machine.slice/libpod-6dd05e91f00f99281f70b1fd90a29e5cc30b0dab243cb7cfb6153d8017872394.scope/container",
	  CTR, "podman", H("6dd05e91f00f99281f70b1fd90a29e5cc30b0dab243cb7cfb6153d8017872394"), NULL,
	  NOQ, 0, 0, "falcosecurity/libs podman.cpp ROOT_PODMAN_CGROUP_LAYOUT {\"/libpod-\", \".scope/container\"}" },
	{ "/machine.slice/libpod-conmon-6dd05e91f00f99281f70b1fd90a29e5cc30b0dab243cb7cfb6153d8017872394.scope",
	  HOST, NULL, NULL, NULL, NOQ, 1, 0,
	  "podman debug log 'Running conmon under slice machine.slice and unitName libpod-conmon-<id>.scope' (conmon is a host process)" },
	{ "/libpod_parent/libpod-6dd05e91f00f99281f70b1fd90a29e5cc30b0dab243cb7cfb6153d8017872394",
	  CTR, "podman", H("6dd05e91f00f99281f70b1fd90a29e5cc30b0dab243cb7cfb6153d8017872394"), NULL,
	  NOQ, 0, 0, "falcosecurity/libs podman.cpp {\"/libpod-\", \"\"} (non-systemd podman); containers/podman TestConmonCgroupfsPath parent" },
	{ "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-6dd05e91f00f99281f70b1fd90a29e5cc30b0dab243cb7cfb6153d8017872394.scope/container",
	  CTR, "podman", H("6dd05e91f00f99281f70b1fd90a29e5cc30b0dab243cb7cfb6153d8017872394"), NULL,
	  NOQ, 0, 0, "rootless podman: falcosecurity/libs podman.cpp layout under the user's systemd" },
	{ "/lxc/mysql-primary-db", CTR, "lxc", "mysql-primary-db", NULL, NOQ, 0, 0,
	  "coroot/coroot-node-agent cgroup/cgroup_test.go (LXC names its containers)" },
	/* ---- other platforms' container layouts ---- */
	{ "/ecs/55091c13-b8cf-4801-b527-f4601742204d/432624d2150b349fe35ba397284dea788c2bf66b885d14dfc1569b01890ca7da",
	  CTR, "ecs", H("432624d2150b349fe35ba397284dea788c2bf66b885d14dfc1569b01890ca7da"), NULL, NOQ, 0, 0,
	  "DataDog/dd-trace-go internal/container_test.go (ECS on EC2: /ecs/<task>/<64 hex>)" },
	{ "/ecs/34dc0b5e626f2c5c4c5170e34b10e765-1234567890", CTR, "ecs",
	  "34dc0b5e626f2c5c4c5170e34b10e765-1234567890", NULL, NOQ, 0, 0,
	  "DataDog/dd-trace-go internal/container_test.go (ECS on Fargate: <32 hex>-<10 digits>)" },
	{ "/ecs/34dc0b5e626f2c5c4c5170e34b10e765/34dc0b5e626f2c5c4c5170e34b10e765-1234567890", CTR, "ecs",
	  "34dc0b5e626f2c5c4c5170e34b10e765-1234567890", NULL, NOQ, 0, 0,
	  "elastic/apm-agent-nodejs container-info (awsEcsSource below a 32-hex task)" },
	{ "/ecs/55091c13-b8cf-4801-b527-f4601742204d", UNK, NULL, NULL, NULL, NOQ, 0, 0,
	  "an ECS task's own cgroup: neither the host nor a container" },
	{ "/system.slice/garden.service/garden/6f265890-5165-7fab-6b52-18d1", CTR, "garden",
	  "6f265890-5165-7fab-6b52-18d1", NULL, NOQ, 0, 0,
	  "DataDog/dd-trace-go internal/container_test.go (Cloud Foundry garden, systemd controllers)" },
	{ "/garden/6f265890-5165-7fab-6b52-18d1", CTR, "garden", "6f265890-5165-7fab-6b52-18d1", NULL,
	  NOQ, 0, 0, "DataDog/dd-trace-go internal/container_test.go (garden, other controllers)" },
	{ "/garden/Not_A_Handle", UNK, NULL, NULL, NULL, NOQ, 0, 1, "a garden handle that does not parse" },
	{ "/kubepods/besteffort/pod74c13223-5a00-11e9-b385-42010a80018d/34dc0b5e-626f-2c5c-4c51-70e34b10e765",
	  POD, NULL, "34dc0b5e-626f-2c5c-4c51-70e34b10e765", "74c13223-5a00-11e9-b385-42010a80018d", BES,
	  0, 0, "elastic/apm-agent-nodejs container-info containerReg (a UUID-shaped container id in a pod)" },
	{ "/uuid/34dc0b5e-626f-2c5c-4c51-70e34b10e765", UNK, NULL, NULL, NULL, NOQ, 0, 0,
	  "DataDog/dd-trace-go internal/container_test.go (a UUID container outside any known layout)" },
	{ "/machine.slice/machine-debian.scope", UNK, NULL, NULL, NULL, NOQ, 0, 0,
	  "a systemd-nspawn container (machine.slice holds containers too): unknown, not host" },
	{ "/system.slice/docker.service/sub", UNK, NULL, NULL, NULL, NOQ, 0, 0,
	  "a sub-cgroup of a service that no host-only layout explains" },
	{ "/my-batch-system/job-42", UNK, NULL, NULL, NULL, NOQ, 0, 0,
	  "a path of a layout nobody documented: unknown, never host" },
	/* ---- the host ---- */
	{ "/", HOST, NULL, NULL, NULL, NOQ, 0, 0, "neuvector/neuvector TestHostProcess (every controller at /)" },
	{ "/system.slice/system-serial\\x2dgetty.slice", HOST, NULL, NULL, NULL, NOQ, 0, 0,
	  "coroot/coroot-node-agent cgroup/cgroup_test.go (systemd escaping)" },
	{ "/runtime.slice/kubelet.service", HOST, NULL, NULL, NULL, NOQ, 0, 0,
	  "coroot/coroot-node-agent cgroup/cgroup_test.go" },
	{ "/system.slice/system-postgresql.slice/postgresql@9.4-main.service", HOST, NULL, NULL, NULL,
	  NOQ, 0, 0, "coroot/coroot-node-agent cgroup/cgroup_test.go" },
	{ "/user/1000.user/c2.session", HOST, NULL, NULL, NULL, NOQ, 0, 0,
	  "neuvector/neuvector TestNsEnterProcess (old systemd user session)" },
	{ "/user.slice/user-1000.slice/session-3.scope", HOST, NULL, NULL, NULL, NOQ, 0, 0,
	  "open-telemetry/opentelemetry-ebpf-instrumentation statagg test outsideKubepods" },
	{ "/system.slice/crio.service", HOST, NULL, NULL, NULL, NOQ, 0, 0,
	  "open-telemetry/opentelemetry-ebpf-instrumentation statagg test outsideKubepods" },
	{ "/podruntime/kubelet", UNK, NULL, NULL, NULL, NOQ, 0, 0,
	  "coroot/coroot-node-agent cgroup/cgroup_test.go (Talos system services: Talos runs them as "
	  "containers of its own containerd, so unknown, not host)" },
	{ "/init", HOST, NULL, NULL, NULL, NOQ, 0, 0, "coroot/coroot-node-agent cgroup_test.go (Talos)" },
	{ "/init.scope", HOST, NULL, NULL, NULL, NOQ, 0, 0, "systemd's PID 1 scope (cgroup v2 hosts)" },
	{ "/lxc.monitor/101", HOST, NULL, NULL, NULL, NOQ, 0, 0, "LXC 4 monitor process cgroup (host side)" },
	{ "/machine.slice/machine-qemu\\x2d1\\x2dvm.scope", HOST, NULL, NULL, NULL, NOQ, 0, 0,
	  "libvirt VM scope: not a container" },
	{ "/system.slice/docker-cleanup.service", HOST, NULL, NULL, NULL, NOQ, 0, 0,
	  "a systemd unit named docker-*: units are not containers" },
	/* ---- malformed: derived from the rows above ---- */
	{ "/system.slice/docker-9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3.scope",
	  UNK, NULL, NULL, NULL, NOQ, 0, 1, "TestDockerIDCentOS row, id truncated to 63 hex" },
	{ "/system.slice/docker-9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3d0.scope",
	  UNK, NULL, NULL, NULL, NOQ, 0, 1, "TestDockerIDCentOS row, id with a 65th digit" },
	{ "/system.slice/docker-.scope", UNK, NULL, NULL, NULL, NOQ, 0, 1, "empty id" },
	{ "/docker/ec08435e04266c5ba381fccbb829f626d11d8ddf5f8f547263c7a2d79ab4787z",
	  UNK, NULL, NULL, NULL, NOQ, 0, 1, "TestDockerIDRancherOS inner id, last digit not hex" },
	{ "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-poddd1bf9d1_241d_47f5_8e25_12de83135812.slice/cri-containerd-F45298CD514D1930C4FE3AFC4412E59547F7E3148FDDD22CA33CEFCE046EB830.scope",
	  POD, NULL, NULL, "dd1bf9d1-241d-47f5-8e25-12de83135812", BES, 0, 1,
	  "TestK8sBottleRocket row, id upper-cased: the pod is known, the container is not" },
	{ "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-poddd1bf9d1_241d_47f5_8e25_12de83135812.slice/cri-containerd-f45298cd514d1930c4fe3afc4412e59547f7e3148fddd22ca3",
	  POD, NULL, NULL, "dd1bf9d1-241d-47f5-8e25-12de83135812", BES, 0, 1,
	  "TestK8sBottleRocket row, cut in the middle of the container id" },
	{ "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod045b1e35_7f13_11e7_ac42.slice/docker-b5b6f2da8008be266864f896f93789762b2ce50792114a5c5f2cc3315af0bc70.scope",
	  UNK, NULL, NULL, NULL, NOQ, 0, 1, "TestDockerIDKubepods2 row, pod uid truncated" },
	{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod2942c55e_c9cb",
	  UNK, NULL, NULL, NULL, NOQ, 0, 1, "coroot CRI-O row cut inside the pod slice name" },
	{ "/kubepods/besteffort/pod74c13223-5a00-11e9-b385-42010a80018g/34dc0b5e626f2c5c4c5170e34b10e7654ce36f0fcd532739f4445baabea03376",
	  UNK, NULL, NULL, NULL, NOQ, 0, 1, "Qard/container-info row, pod uid with a non-hex digit" },
	{ "/system.slice/containerd.service/kubepods-burstable-pod4ed02c0b_0df8_4d14_a30e_fd589ee4143a.slice:cri-containerd:d4a9f9195eaf",
	  POD, NULL, NULL, "4ed02c0b-0df8-4d14-a30e-fd589ee4143a", BUR, 0, 1,
	  "coroot colon-form row with a short (12-digit) id" },
	{ "/ecs/5a081c13-b8cf-4801-b427-f4601742204d/foo-4f797c539e6c745de61a93ca3ff892358ecbcaccd8414d5db545c38428142970.scope",
	  UNK, NULL, NULL, NULL, NOQ, 0, 0, "an unknown runtime's scope carrying a 64-hex id: unknown, not host" },
};
/* clang-format on */

static void test_real_world_paths_parse_to_the_expected_identity(void **state)
{
	int bad = 0;

	(void)state;
	/* Every mismatching row is printed before the test fails. */
#define ROW_FAIL(...) (print_error(__VA_ARGS__), print_error("\n"), bad++)
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct ig_cgroup_info info;
		char where[512];
		int ret = ig_cgroup_path_parse(r->path, &info);

		snprintf(where, sizeof(where), "row %zu (%s): %s", i, r->source, r->path);
		if (ret != 0)
			ROW_FAIL("%s: returned %d", where, ret);
		if (info.scope != r->scope)
			ROW_FAIL("%s: scope %d, want %d", where, info.scope, r->scope);
		if ((r->runtime == NULL) != (info.runtime == NULL) ||
		    (r->runtime && strcmp(r->runtime, info.runtime)))
			ROW_FAIL("%s: runtime %s, want %s", where,
				 info.runtime ? info.runtime : "-", r->runtime ? r->runtime : "-");
		if (strcmp(info.container_id, r->container_id ? r->container_id : ""))
			ROW_FAIL("%s: container '%s', want '%s'", where, info.container_id,
				 r->container_id ? r->container_id : "");
		if (strcmp(info.pod_uid, r->pod_uid ? r->pod_uid : ""))
			ROW_FAIL("%s: pod '%s', want '%s'", where, info.pod_uid,
				 r->pod_uid ? r->pod_uid : "");
		if (info.qos != r->qos)
			ROW_FAIL("%s: qos %d, want %d", where, info.qos, r->qos);
		if (info.conmon != !!r->conmon)
			ROW_FAIL("%s: conmon %d, want %d", where, info.conmon, r->conmon);
		if (info.malformed != !!r->malformed)
			ROW_FAIL("%s: malformed %d, want %d", where, info.malformed, r->malformed);
	}
#undef ROW_FAIL
	if (bad)
		fail_msg("%d row check(s) failed", bad);
}

static void test_host_is_never_guessed_for_unparseable_container_ids(void **state)
{
	static const char *const paths[] = {
		"/system.slice/crio-0ba8ac17e4e7a31fb82279503552fe94e64bab4745bf6fd2ff231e7c8ca8bed.scope",
		"/machine.slice/libpod-xyz.scope",
		"/docker/not-a-container",
		"/kubepods/besteffort/podnot-a-uid/34dc0b5e626f2c5c4c5170e34b10e7654ce36f0fcd532739f4445baabea03376",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct ig_cgroup_info info;

		assert_int_equal(ig_cgroup_path_parse(paths[i], &info), 0);
		if (info.scope != IG_CG_UNKNOWN)
			fail_msg("%s: scope %d, want unknown", paths[i], info.scope);
		assert_null(ig_cg_scope_name(info.scope));
	}
}

static void test_bad_input_is_rejected(void **state)
{
	struct ig_cgroup_info info;

	(void)state;
	assert_int_equal(ig_cgroup_path_parse(NULL, &info), -EINVAL);
	assert_int_equal(ig_cgroup_path_parse("", &info), -EINVAL);
	assert_int_equal(ig_cgroup_path_parse("kubepods/burstable", &info), -EINVAL);
	assert_int_equal(ig_cgroup_path_parse("0::", &info), -EINVAL);
	assert_int_equal(ig_cgroup_path_parse("/", NULL), -EINVAL);
}

static void test_pod_uid_forms(void **state)
{
	(void)state;
	assert_true(ig_pod_uid_valid("2942c55e-c9cb-428a-93f4-eaf89c1f3ce0", 36, false));
	assert_false(ig_pod_uid_valid("2942c55e_c9cb_428a_93f4_eaf89c1f3ce0", 36, false));
	assert_true(ig_pod_uid_valid("2942c55e_c9cb_428a_93f4_eaf89c1f3ce0", 36, true));
	assert_true(ig_pod_uid_valid("9729a196c4723b60ab401eaff722982d", 32, false));
	assert_false(ig_pod_uid_valid("9729a196c4723b60ab401eaff722982", 31, false));
	assert_false(ig_pod_uid_valid("2942c55e-c9cb-428a-93f4-eaf89c1f3ceg", 36, false));
	assert_false(ig_pod_uid_valid("2942c55ec-c9b-428a-93f4-eaf89c1f3ce0", 36, false));
	assert_false(ig_pod_uid_valid(NULL, 0, false));
}

static void test_container_id_must_be_64_lowercase_hex(void **state)
{
	const char *ok = "f45298cd514d1930c4fe3afc4412e59547f7e3148fddd22ca33cefce046eb830";

	(void)state;
	assert_true(ig_container_id_valid(ok, 64));
	assert_false(ig_container_id_valid(ok, 63));
	assert_false(ig_container_id_valid(
		"F45298cd514d1930c4fe3afc4412e59547f7e3148fddd22ca33cefce046eb830", 64));
	assert_false(ig_container_id_valid(NULL, 64));
}

static void test_scope_and_qos_names(void **state)
{
	(void)state;
	assert_string_equal(ig_cg_scope_name(IG_CG_HOST), "host");
	assert_string_equal(ig_cg_scope_name(IG_CG_CONTAINER), "container");
	assert_string_equal(ig_cg_scope_name(IG_CG_POD), "pod");
	assert_null(ig_cg_scope_name(IG_CG_UNKNOWN));
	assert_string_equal(ig_cg_qos_name(IG_QOS_BESTEFFORT), "besteffort");
	assert_null(ig_cg_qos_name(IG_QOS_NONE));
}

/* ---- directories ---- */

struct seen {
	int n;
	uint64_t ids[16];
	char paths[16][256];
};

static int collect(void *arg, uint64_t id, const char *path)
{
	struct seen *s = arg;

	if (s->n < 16) {
		s->ids[s->n] = id;
		snprintf(s->paths[s->n], sizeof(s->paths[0]), "%s", path);
	}
	s->n++;
	return 0;
}

static int find_path(const struct seen *s, const char *p)
{
	for (int i = 0; i < s->n && i < 16; i++)
		if (strcmp(s->paths[i], p) == 0)
			return i;
	return -1;
}

static void test_walk_lists_every_directory_with_its_inode(void **state)
{
	char root[] = "/tmp/ig_cgwalk_XXXXXX", p[512];
	struct seen s = { 0 };
	struct stat st;
	int i;

	(void)state;
	assert_non_null(mkdtemp(root));
	snprintf(p, sizeof(p), "mkdir -p %s/a/b %s/c && touch %s/a/file", root, root, root);
	assert_int_equal(system(p), 0);
	assert_int_equal(ig_cgroup_walk(root, 64, collect, &s), 0);
	assert_int_equal(s.n, 4); /* /, /a, /a/b, /c: files are not cgroups */
	i = find_path(&s, "/a/b");
	assert_true(i >= 0);
	snprintf(p, sizeof(p), "%s/a/b", root);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(s.ids[i], st.st_ino);
	assert_true(find_path(&s, "/") == 0);
	assert_int_equal(ig_cgroup_walk("/nonexistent/ig", 64, collect, &s), -ENOENT);
	snprintf(p, sizeof(p), "rm -rf %s", root);
	assert_int_equal(system(p), 0);
}

static void test_root_detect_accepts_directories_and_rejects_files(void **state)
{
	char out[PATH_MAX];
	bool cg2 = true;

	(void)state;
	assert_int_equal(ig_cgroup_root_detect("/tmp/", out, sizeof(out), &cg2), 0);
	assert_string_equal(out, "/tmp");
	assert_false(cg2);
	assert_int_equal(ig_cgroup_root_detect("/etc/hostname", out, sizeof(out), &cg2), -ENOTDIR);
	assert_int_equal(ig_cgroup_root_detect("/nonexistent/ig", out, sizeof(out), &cg2), -ENOENT);
	/* this machine (hybrid) has its v2 hierarchy at /sys/fs/cgroup/unified */
	if (ig_cgroup_root_detect("auto", out, sizeof(out), &cg2) == 0)
		assert_true(cg2);
}

/* The kernfs file handle of a real cgroup resolves to its path, and a
 * removed cgroup reports -ESTALE. Needs root and cgroup v2. */
static void test_path_by_id_resolves_real_cgroups_and_reports_removed_ones(void **state)
{
	char root[PATH_MAX], dir[PATH_MAX * 2], path[PATH_MAX];
	bool cg2;
	struct stat st;
	int fd;

	(void)state;
	if (geteuid() != 0 || ig_cgroup_root_detect("auto", root, sizeof(root), &cg2) != 0) {
		if (getenv("CI") && strcmp(getenv("CI"), "true") == 0)
			fail_msg("needs root and a cgroup v2 hierarchy (CI=true)");
		fprintf(stderr, "SKIPPED: needs root and a cgroup v2 hierarchy\n");
		skip();
	}
	snprintf(dir, sizeof(dir), "%s/ig-test-byid-%d", root, (int)getpid());
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(stat(dir, &st), 0);
	fd = open(root, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	assert_int_equal(ig_cgroup_path_by_id(fd, st.st_ino, path, sizeof(path)), 0);
	assert_string_equal(path, dir + strlen(root));
	assert_int_equal(ig_cgroup_path_by_id(fd, 1, path, sizeof(path)), 0);
	assert_string_equal(path, "/");
	assert_int_equal(rmdir(dir), 0);
	assert_int_equal(ig_cgroup_path_by_id(fd, st.st_ino, path, sizeof(path)), -ESTALE);
	close(fd);
	/* a directory outside kernfs has no kernfs handles: never a path */
	fd = open("/tmp", O_RDONLY | O_DIRECTORY);
	assert_true(ig_cgroup_path_by_id(fd, 2, path, sizeof(path)) < 0);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_world_paths_parse_to_the_expected_identity),
		cmocka_unit_test(test_host_is_never_guessed_for_unparseable_container_ids),
		cmocka_unit_test(test_bad_input_is_rejected),
		cmocka_unit_test(test_pod_uid_forms),
		cmocka_unit_test(test_container_id_must_be_64_lowercase_hex),
		cmocka_unit_test(test_scope_and_qos_names),
		cmocka_unit_test(test_walk_lists_every_directory_with_its_inode),
		cmocka_unit_test(test_root_detect_accepts_directories_and_rejects_files),
		cmocka_unit_test(test_path_by_id_resolves_real_cgroups_and_reports_removed_ones),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
