/* ig_tls: mutual TLS between agent and aggregator, on nng's tls+tcp://.
 *
 * Why our own TLS engine: nng 1.5 (Debian 12) does TLS through a pluggable
 * engine (nng/supplemental/tls/engine.h) and ships one built on mbedTLS, but
 * it exposes nothing of the peer's certificate but NNG_OPT_TLS_VERIFIED (the
 * NNG_OPT_TLS_PEER_CN / _ALT_NAMES pipe options arrived in later releases),
 * and its handshake errors reach the operator as one opaque "peer could not
 * be authenticated". The aggregator must know *who* is talking, so ig_tls
 * registers an OpenSSL engine (libssl 3, already a dependency) in place of
 * mbedTLS. It keeps, per connection, the names of the verified peer
 * certificate (DNS SANs, then the subject CN) and the reason a handshake
 * failed (expired, unknown CA, no certificate, name mismatch, a plaintext
 * client), which it logs (rate-limited) and counts.
 *
 * Reading a pipe's names: nng answers nng_pipe_get_bool(p, NNG_OPT_TLS_VERIFIED)
 * by calling the engine's verified() hook synchronously, in the caller's
 * thread, with the connection locked. ig_tls_peer() sets a thread-local
 * request slot around that call and the hook copies the connection's names
 * into it: an exact association between a pipe and its certificate, with no
 * shared table to keep in step with nng's pipe lifetimes.
 *
 * Files follow a Kubernetes TLS Secret (and cert-manager's Certificate):
 * <dir>/tls.crt (own certificate, optionally followed by its chain),
 * <dir>/tls.key (its private key, unencrypted PEM), <dir>/ca.crt (the CA that
 * signs the peers). ig_tls_watch notices a rotation (the files' inode, size
 * and mtime change, as when the kubelet swaps the Secret's ..data symlink);
 * the caller then builds a new nng_tls_config and sets it on its listener or
 * dialer: new connections use it, established ones continue undisturbed, so
 * nothing in flight is lost.
 */
#ifndef IG_TLS_H
#define IG_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "ig_err.h"

#define IG_TLS_MAX_NAMES 8
#define IG_TLS_NAME_MAX 256

/* Handshake failures, by cause (counted across all connections). */
enum ig_tls_fail {
	IG_TLS_FAIL_NO_CERT = 0, /* the client presented no certificate */
	IG_TLS_FAIL_UNKNOWN_CA, /* not signed by our ca.crt */
	IG_TLS_FAIL_EXPIRED, /* expired or not yet valid */
	IG_TLS_FAIL_NAME, /* server certificate does not carry the expected name */
	IG_TLS_FAIL_PLAINTEXT, /* a plaintext (tcp://) peer spoke to a TLS endpoint */
	IG_TLS_FAIL_REJECTED_BY_PEER, /* the peer refused our certificate (an alert) */
	IG_TLS_FAIL_OTHER,
	IG_TLS_FAIL__COUNT
};
extern const char *const ig_tls_fail_names[IG_TLS_FAIL__COUNT];

struct ig_tls_peer {
	bool verified;
	uint32_t nnames;
	char names[IG_TLS_MAX_NAMES][IG_TLS_NAME_MAX]; /* DNS SANs first, then the CN */
};

/* Registers the OpenSSL engine with nng. Idempotent; call before any TLS
 * listener or dialer is created. 0 or -ENOTSUP. */
int ig_tls_init(void);

/* Builds a TLS configuration from dir/{tls.crt,tls.key,ca.crt}. server: the
 * aggregator side (client certificates required); otherwise the agent side,
 * which verifies that the aggregator's certificate carries server_name.
 * `what` names the option in messages ("aggregator.tls_dir"). Also warns when
 * the own certificate expires within 7 days. 0 or negative errno with a message. */
int ig_tls_config_load(const char *dir, bool server, const char *server_name, const char *what,
		       nng_tls_config **out, struct ig_err *err);

/* The names in dir/tls.crt (for checks such as "agent.node_name must be one of
 * them"). Returns the count (>= 0) or negative errno with a message. */
int ig_tls_cert_names(const char *dir, struct ig_tls_peer *out, struct ig_err *err);

/* The verified certificate names of the peer at the other end of pipe p. 0
 * when the peer is a verified TLS client; -ENOENT when the pipe is not TLS or
 * not verified. */
int ig_tls_peer(nng_pipe p, struct ig_tls_peer *out);
bool ig_tls_peer_has(const struct ig_tls_peer *peer, const char *name);

/* Handshake failure counters (process-wide). */
void ig_tls_fail_counts(uint64_t out[IG_TLS_FAIL__COUNT]);

/* Rotation: remembers the files' identity (inode, size, mtime). */
struct ig_tls_watch {
	uint64_t sig;
	bool init;
};
/* True when the files differ from what was seen by the last call that
 * returned true (the first call records them and returns false). */
bool ig_tls_watch_changed(struct ig_tls_watch *w, const char *dir);

/* "tls+tcp://..." is TLS; tcp://, ipc://, inproc:// are plaintext. */
bool ig_tls_url_is_tls(const char *url);
/* The host part of an nng URL ("tls+tcp://agg.ns:7700" -> "agg.ns"). */
void ig_tls_url_host(const char *url, char *buf, size_t len);

#endif
