/* ig_tls: see ig_tls.h. An nng TLS engine on OpenSSL, in the shape of nng's
 * own mbedTLS engine (src/supplemental/tls/mbedtls/tls.c): the SSL object
 * reads and writes through a BIO whose callbacks are nng_tls_engine_recv/send,
 * which return NNG_EAGAIN when the TCP side has to move first. */
#include "ig_tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <nng/supplemental/tls/engine.h>

#include "ig_log.h"
#include "ig_time.h"

const char *const ig_tls_fail_names[IG_TLS_FAIL__COUNT] = {
	[IG_TLS_FAIL_NO_CERT] = "no_cert",     [IG_TLS_FAIL_UNKNOWN_CA] = "unknown_ca",
	[IG_TLS_FAIL_EXPIRED] = "expired",     [IG_TLS_FAIL_NAME] = "wrong_name",
	[IG_TLS_FAIL_PLAINTEXT] = "plaintext", [IG_TLS_FAIL_REJECTED_BY_PEER] = "rejected_by_peer",
	[IG_TLS_FAIL_OTHER] = "other",
};

struct nng_tls_engine_config {
	SSL_CTX *ctx;
	nng_tls_mode mode;
	char *server_name;
};

struct nng_tls_engine_conn {
	void *tls; /* nng's side, for nng_tls_engine_send/recv */
	SSL *ssl;
	bool server;
	bool done, failed;
	int fail_rv;
	uint8_t first[4]; /* the first bytes the peer sent: plaintext detection */
	size_t nfirst;
	bool reported; /* a failure was logged and counted */
	char bad_subject[256], bad_not_after[64]; /* the certificate that failed */
	struct ig_tls_peer peer;
};

static BIO_METHOD *bio_meth;
static __thread struct ig_tls_peer *tl_query; /* see ig_tls_peer() */
static __thread char tl_err[512]; /* detail of the last failing config op */
static uint64_t fail_counts[IG_TLS_FAIL__COUNT];
static pthread_mutex_t rl_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ig_ratelimit rl_fail[IG_TLS_FAIL__COUNT];

static void set_err(const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char ebuf[256] = "";
	if (e)
		ERR_error_string_n(e, ebuf, sizeof(ebuf));
	snprintf(tl_err, sizeof(tl_err), "%s%s%s", what, *ebuf ? ": " : "", ebuf);
	ERR_clear_error();
}

/* --- BIO over nng's TCP stream --------------------------------------- */

static int bio_write(BIO *b, const char *buf, int len)
{
	struct nng_tls_engine_conn *c = BIO_get_data(b);
	size_t n = (size_t)len;
	int rv;

	BIO_clear_retry_flags(b);
	rv = nng_tls_engine_send(c->tls, (const uint8_t *)buf, &n);
	if (rv == NNG_EAGAIN) {
		BIO_set_retry_write(b);
		return -1;
	}
	return rv == 0 ? (int)n : -1;
}

static int bio_read(BIO *b, char *buf, int len)
{
	struct nng_tls_engine_conn *c = BIO_get_data(b);
	size_t n = (size_t)len;
	int rv;

	BIO_clear_retry_flags(b);
	rv = nng_tls_engine_recv(c->tls, (uint8_t *)buf, &n);
	if (rv == NNG_EAGAIN) {
		BIO_set_retry_read(b);
		return -1;
	}
	if (rv != 0)
		return -1;
	for (size_t i = 0; i < n && c->nfirst < sizeof(c->first); i++)
		c->first[c->nfirst++] = (uint8_t)buf[i];
	return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void asn1_time_str(const ASN1_TIME *t, char *buf, size_t len);

/* Remembers which certificate failed verification, for the log line. */
static int verify_cb(int ok, X509_STORE_CTX *st)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(st, SSL_get_ex_data_X509_STORE_CTX_idx());
	nng_tls_engine_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
	X509 *x = X509_STORE_CTX_get_current_cert(st);

	if (!ok && c && x && !c->bad_subject[0]) {
		X509_NAME_oneline(X509_get_subject_name(x), c->bad_subject, sizeof(c->bad_subject));
		asn1_time_str(X509_get0_notAfter(x), c->bad_not_after, sizeof(c->bad_not_after));
	}
	return ok;
}

/* --- configuration ops ------------------------------------------------ */

static int cfg_init(nng_tls_engine_config *cfg, nng_tls_mode mode)
{
	cfg->mode = mode;
	cfg->ctx = SSL_CTX_new(mode == NNG_TLS_MODE_SERVER ? TLS_server_method() :
							     TLS_client_method());
	if (!cfg->ctx)
		return NNG_ENOMEM;
	SSL_CTX_set_min_proto_version(cfg->ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(cfg->ctx,
			 SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (mode == NNG_TLS_MODE_SERVER) {
		SSL_CTX_set_num_tickets(cfg->ctx, 0);
		SSL_CTX_set_verify(cfg->ctx, SSL_VERIFY_NONE, verify_cb);
	} else {
		SSL_CTX_set_verify(cfg->ctx, SSL_VERIFY_PEER, verify_cb);
	}
	return 0;
}

static void cfg_fini(nng_tls_engine_config *cfg)
{
	SSL_CTX_free(cfg->ctx);
	free(cfg->server_name);
}

static int cfg_server(nng_tls_engine_config *cfg, const char *name)
{
	char *n = strdup(name);
	if (!n)
		return NNG_ENOMEM;
	free(cfg->server_name);
	cfg->server_name = n;
	return 0;
}

static int cfg_auth(nng_tls_engine_config *cfg, nng_tls_auth_mode mode)
{
	int v = SSL_VERIFY_NONE;
	if (mode == NNG_TLS_AUTH_MODE_OPTIONAL)
		v = SSL_VERIFY_PEER;
	else if (mode == NNG_TLS_AUTH_MODE_REQUIRED)
		v = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	SSL_CTX_set_verify(cfg->ctx, v, verify_cb);
	return 0;
}

static int cfg_ca_chain(nng_tls_engine_config *cfg, const char *pem, const char *crl)
{
	X509_STORE *st = SSL_CTX_get_cert_store(cfg->ctx);
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x;
	int n = 0;

	if (!b)
		return NNG_ENOMEM;
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		X509_STORE_add_cert(st, x);
		X509_free(x);
		n++;
	}
	BIO_free(b);
	ERR_clear_error();
	if (n == 0) {
		set_err("no PEM certificate found");
		return NNG_EINVAL;
	}
	if (crl) {
		b = BIO_new_mem_buf(crl, -1);
		X509_CRL *c;
		while (b && (c = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL)) != NULL) {
			X509_STORE_add_crl(st, c);
			X509_CRL_free(c);
			X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
		}
		BIO_free(b);
		ERR_clear_error();
	}
	return 0;
}

static int cfg_own_cert(nng_tls_engine_config *cfg, const char *cert, const char *key,
			const char *pass)
{
	BIO *b = BIO_new_mem_buf(cert, -1);
	X509 *x;
	EVP_PKEY *pk;
	int rv = NNG_EINVAL;

	if (!b)
		return NNG_ENOMEM;
	if (!(x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		set_err("no PEM certificate found");
		goto out;
	}
	if (SSL_CTX_use_certificate(cfg->ctx, x) != 1) {
		X509_free(x);
		set_err("certificate not usable");
		goto out;
	}
	X509_free(x);
	SSL_CTX_clear_chain_certs(cfg->ctx);
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		SSL_CTX_add0_chain_cert(cfg->ctx, x); /* takes ownership */
	ERR_clear_error();
	BIO_free(b);
	if (!(b = BIO_new_mem_buf(key, -1))) {
		rv = NNG_ENOMEM;
		goto out;
	}
	if (!(pk = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)pass))) {
		set_err("no usable PEM private key (it must be unencrypted)");
		goto out;
	}
	if (SSL_CTX_use_PrivateKey(cfg->ctx, pk) != 1 || SSL_CTX_check_private_key(cfg->ctx) != 1) {
		EVP_PKEY_free(pk);
		set_err("the private key does not match the certificate");
		goto out;
	}
	EVP_PKEY_free(pk);
	rv = 0;
out:
	BIO_free(b);
	return rv;
}

static int tls_ver(nng_tls_version v)
{
	switch (v) {
	case NNG_TLS_1_0:
		return TLS1_VERSION;
	case NNG_TLS_1_1:
		return TLS1_1_VERSION;
	case NNG_TLS_1_2:
		return TLS1_2_VERSION;
	case NNG_TLS_1_3:
		return TLS1_3_VERSION;
	}
	return 0;
}

static int cfg_version(nng_tls_engine_config *cfg, nng_tls_version lo, nng_tls_version hi)
{
	if (!tls_ver(lo) || !tls_ver(hi) || lo > hi)
		return NNG_ENOTSUP;
	SSL_CTX_set_min_proto_version(cfg->ctx, tls_ver(lo));
	SSL_CTX_set_max_proto_version(cfg->ctx, tls_ver(hi));
	return 0;
}

/* --- connection ops --------------------------------------------------- */

static int conn_init(nng_tls_engine_conn *c, void *tls, nng_tls_engine_config *cfg)
{
	BIO *b;

	c->tls = tls;
	c->server = cfg->mode == NNG_TLS_MODE_SERVER;
	if (!(c->ssl = SSL_new(cfg->ctx)))
		return NNG_ENOMEM;
	if (!(b = BIO_new(bio_meth))) {
		SSL_free(c->ssl);
		c->ssl = NULL;
		return NNG_ENOMEM;
	}
	BIO_set_data(b, c);
	SSL_set_bio(c->ssl, b, b);
	SSL_set_app_data(c->ssl, c);
	if (c->server) {
		SSL_set_accept_state(c->ssl);
	} else {
		SSL_set_connect_state(c->ssl);
		if (cfg->server_name && *cfg->server_name) {
			X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
			/* An IP address is matched against IP SANs, a name against DNS SANs. */
			if (X509_VERIFY_PARAM_set1_ip_asc(vp, cfg->server_name) != 1) {
				ERR_clear_error();
				SSL_set_tlsext_host_name(c->ssl, cfg->server_name);
				SSL_set1_host(c->ssl, cfg->server_name);
			}
		}
	}
	return 0;
}

static void conn_fini(nng_tls_engine_conn *c)
{
	SSL_free(c->ssl);
}

static void conn_close(nng_tls_engine_conn *c)
{
	if (c->done && !c->failed) {
		(void)SSL_shutdown(c->ssl);
		ERR_clear_error();
	}
}

/* DNS SANs first, then the subject CN; names with NULs or too long are skipped. */
static void x509_names(X509 *x, struct ig_tls_peer *p)
{
	GENERAL_NAMES *g = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; g && i < sk_GENERAL_NAME_num(g) && p->nnames < IG_TLS_MAX_NAMES; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(g, i);
		if (gn->type != GEN_DNS)
			continue;
		const unsigned char *d = ASN1_STRING_get0_data(gn->d.dNSName);
		int len = ASN1_STRING_length(gn->d.dNSName);
		if (len <= 0 || len >= IG_TLS_NAME_MAX || memchr(d, 0, (size_t)len))
			continue;
		memcpy(p->names[p->nnames], d, (size_t)len);
		p->names[p->nnames++][len] = '\0';
	}
	GENERAL_NAMES_free(g);
	if (p->nnames < IG_TLS_MAX_NAMES) {
		char cn[IG_TLS_NAME_MAX];
		int len = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
						    sizeof(cn));
		if (len > 0 && (size_t)len == strlen(cn) && !ig_tls_peer_has(p, cn))
			snprintf(p->names[p->nnames++], IG_TLS_NAME_MAX, "%s", cn);
	}
	ERR_clear_error();
}

static void capture_peer(nng_tls_engine_conn *c)
{
	X509 *pc = SSL_get0_peer_certificate(c->ssl);

	memset(&c->peer, 0, sizeof(c->peer));
	if (!pc || SSL_get_verify_result(c->ssl) != X509_V_OK)
		return;
	c->peer.verified = true;
	x509_names(pc, &c->peer);
}

static const char *explain(const nng_tls_engine_conn *c, enum ig_tls_fail f)
{
	switch (f) {
	case IG_TLS_FAIL_NO_CERT:
		return c->server ? "the agent presented no client certificate: give it "
				   "agent.tls_dir with a tls.crt/tls.key signed by this "
				   "aggregator's ca.crt" :
				   "the aggregator requires a client certificate this agent did "
				   "not send: check agent.tls_dir";
	case IG_TLS_FAIL_UNKNOWN_CA:
		return c->server ? "the agent's certificate is not signed by the CA in "
				   "aggregator.tls_dir/ca.crt" :
				   "the certificates do not share a CA: agent.tls_dir/ca.crt must "
				   "sign the aggregator's certificate and the aggregator's ca.crt "
				   "this agent's";
	case IG_TLS_FAIL_EXPIRED:
		return "a certificate has expired or is not valid yet: renew it (and check "
		       "the clocks)";
	case IG_TLS_FAIL_NAME:
		return "the aggregator's certificate does not carry the name the agent "
		       "expects (agent.tls_server_name, default: the host in agent.aggregator)";
	case IG_TLS_FAIL_REJECTED_BY_PEER:
		return c->server ?
			       "an agent refused this aggregator's certificate: its ca.crt must "
			       "sign it, and it must carry the name the agent dials "
			       "(agent.tls_server_name); see the agent's log" :
			       "the aggregator refused this agent's certificate: it must be "
			       "signed by the aggregator's ca.crt and valid now; see the "
			       "aggregator's log";
	case IG_TLS_FAIL_PLAINTEXT:
		return c->server ? "a plaintext client (tcp://) connected to this TLS listener: "
				   "point the agent at tls+tcp:// and give it certificates" :
				   "the aggregator at this address speaks plaintext (tcp://): "
				   "enable TLS there, or use tcp:// with agent.plaintext: true";
	default:
		return c->server ? "TLS handshake with an agent failed" :
				   "TLS handshake with the aggregator failed";
	}
}

static enum ig_tls_fail classify(nng_tls_engine_conn *c, unsigned long e, long vr)
{
	static const uint8_t sp[4] = { 0x00, 'S', 'P', 0x00 };

	if (c->nfirst == 4 && !memcmp(c->first, sp, 4))
		return IG_TLS_FAIL_PLAINTEXT;
	switch (vr) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return IG_TLS_FAIL_EXPIRED;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		return IG_TLS_FAIL_UNKNOWN_CA;
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		return IG_TLS_FAIL_NAME;
	default:
		break;
	}
	if (ERR_GET_LIB(e) == ERR_LIB_SSL) {
		switch (ERR_GET_REASON(e)) {
		case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
		case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
			return IG_TLS_FAIL_NO_CERT;
		case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
		case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
		case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
		case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
		case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
		case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
			return IG_TLS_FAIL_REJECTED_BY_PEER;
		default:
			break;
		}
	}
	return IG_TLS_FAIL_OTHER;
}

static void report_failure(nng_tls_engine_conn *c)
{
	unsigned long e = ERR_peek_last_error();
	long vr = SSL_get_verify_result(c->ssl);
	enum ig_tls_fail f = classify(c, e, vr);
	char detail[256] = "", subject[256] = "";
	X509 *pc = SSL_get0_peer_certificate(c->ssl);
	uint64_t sup = 0;
	bool ok;

	if (c->reported)
		return;
	c->reported = true;
	__atomic_add_fetch(&fail_counts[f], 1, __ATOMIC_RELAXED);
	if (vr != X509_V_OK)
		snprintf(detail, sizeof(detail), "%s", X509_verify_cert_error_string(vr));
	else if (e)
		ERR_error_string_n(e, detail, sizeof(detail));
	if (c->bad_subject[0])
		snprintf(subject, sizeof(subject), "%s", c->bad_subject);
	else if (pc)
		X509_NAME_oneline(X509_get_subject_name(pc), subject, sizeof(subject));
	ERR_clear_error();
	pthread_mutex_lock(&rl_mu);
	if (!rl_fail[f].interval_ns)
		rl_fail[f].interval_ns = 10 * IG_NSEC_PER_SEC;
	ok = ig_ratelimit_ok(&rl_fail[f], &sup);
	pthread_mutex_unlock(&rl_mu);
	if (ok)
		ig_warn(explain(c, f),
			"side=%s reason=%s detail=\"%s\" peer_subject=\"%s\" "
			"peer_not_after=\"%s\" suppressed=%llu",
			c->server ? "aggregator" : "agent", ig_tls_fail_names[f], detail, subject,
			c->bad_not_after, (unsigned long long)sup);
}

static int conn_handshake(nng_tls_engine_conn *c)
{
	int r, e;

	if (c->failed)
		return c->fail_rv;
	if (c->done)
		return 0;
	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->done = true;
		capture_peer(c);
		return 0;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return NNG_EAGAIN;
	c->failed = true;
	c->fail_rv = SSL_get_verify_result(c->ssl) != X509_V_OK ? NNG_EPEERAUTH : NNG_ECRYPTO;
	if (c->server && c->nfirst == 0) {
		/* Closed without sending a byte: a TCP health check, a port scan,
		 * or our own nudge after a rotation (server.c). No TLS attempt. */
		ERR_clear_error();
		return NNG_ECLOSED;
	}
	report_failure(c);
	return c->fail_rv;
}

static int conn_recv(nng_tls_engine_conn *c, uint8_t *buf, size_t *szp)
{
	size_t n = 0;
	int r, e;

	ERR_clear_error();
	r = SSL_read_ex(c->ssl, buf, *szp, &n);
	if (r == 1) {
		*szp = n;
		return 0;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		ERR_clear_error();
		return NNG_EAGAIN;
	}
	if (e == SSL_ERROR_ZERO_RETURN)
		return NNG_ECLOSED;
	/* With TLS 1.3 a client finishes its handshake before the server has
	 * checked the client certificate: the server's refusal arrives here. */
	if (e == SSL_ERROR_SSL)
		report_failure(c);
	ERR_clear_error();
	return NNG_ECRYPTO;
}

static int conn_send(nng_tls_engine_conn *c, const uint8_t *buf, size_t *szp)
{
	size_t n = 0;
	int r, e;

	ERR_clear_error();
	r = SSL_write_ex(c->ssl, buf, *szp, &n);
	if (r == 1) {
		*szp = n;
		return 0;
	}
	e = SSL_get_error(c->ssl, r);
	ERR_clear_error();
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return NNG_EAGAIN;
	return NNG_ECRYPTO;
}

static bool conn_verified(nng_tls_engine_conn *c)
{
	if (tl_query)
		*tl_query = c->peer;
	return c->peer.verified;
}

static nng_tls_engine_config_ops cfg_ops = {
	.size = sizeof(struct nng_tls_engine_config),
	.init = cfg_init,
	.fini = cfg_fini,
	.server = cfg_server,
	.auth = cfg_auth,
	.ca_chain = cfg_ca_chain,
	.own_cert = cfg_own_cert,
	.version = cfg_version,
};

static nng_tls_engine_conn_ops conn_ops = {
	.size = sizeof(struct nng_tls_engine_conn),
	.init = conn_init,
	.fini = conn_fini,
	.close = conn_close,
	.handshake = conn_handshake,
	.recv = conn_recv,
	.send = conn_send,
	.verified = conn_verified,
};

static const nng_tls_engine engine = {
	.version = NNG_TLS_ENGINE_VERSION,
	.config_ops = &cfg_ops,
	.conn_ops = &conn_ops,
	.name = "ingrain-openssl",
	.description = "ingrain's OpenSSL engine (common/ig_tls.c)",
	.fips_mode = false,
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rv;

static void do_init(void)
{
	nng_tls_config *tmp = NULL;

	/* nng registers its built-in engine during its own lazy initialisation;
	 * allocate (and drop) one config first so ours replaces it, not the
	 * reverse. */
	if (nng_tls_config_alloc(&tmp, NNG_TLS_MODE_CLIENT) == 0)
		nng_tls_config_free(tmp);
	bio_meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ingrain-nng");
	if (!bio_meth) {
		init_rv = -ENOMEM;
		return;
	}
	BIO_meth_set_write(bio_meth, bio_write);
	BIO_meth_set_read(bio_meth, bio_read);
	BIO_meth_set_ctrl(bio_meth, bio_ctrl);
	BIO_meth_set_create(bio_meth, bio_create);
	init_rv = nng_tls_engine_register(&engine) == 0 ? 0 : -ENOTSUP;
}

int ig_tls_init(void)
{
	pthread_once(&init_once, do_init);
	return init_rv;
}

/* --- files ------------------------------------------------------------ */

static char *read_pem(const char *dir, const char *name, const char *what, struct ig_err *err)
{
	char path[4096];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, "rb"))) {
		ig_err_add(err,
			   "%s: cannot read %s: %s (a directory in the layout of a Kubernetes "
			   "TLS Secret: tls.crt, tls.key, ca.crt)",
			   what, path, strerror(errno));
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || n > (1 << 20) ||
	    fseek(f, 0, SEEK_SET) < 0 || !(buf = malloc((size_t)n + 1))) {
		ig_err_add(err, "%s: %s is unreadable or larger than 1 MiB", what, path);
		fclose(f);
		return NULL;
	}
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		ig_err_add(err, "%s: short read of %s", what, path);
		free(buf);
		fclose(f);
		return NULL;
	}
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void asn1_time_str(const ASN1_TIME *t, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	buf[0] = '\0';
	if (!b)
		return;
	if (ASN1_TIME_print(b, t) == 1) {
		int n = BIO_read(b, buf, (int)len - 1);
		buf[n > 0 ? n : 0] = '\0';
	}
	BIO_free(b);
}

/* Checks the validity period of the first certificate in pem. */
static int check_dates(const char *pem, const char *path, const char *what, struct ig_err *err)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	char when[64];
	int rv = 0;

	BIO_free(b);
	if (!x) {
		ERR_clear_error();
		ig_err_add(err, "%s: %s holds no PEM certificate", what, path);
		return -EINVAL;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
		asn1_time_str(X509_get0_notAfter(x), when, sizeof(when));
		ig_err_add(err, "%s: %s expired on %s: renew it", what, path, when);
		rv = -EKEYEXPIRED;
	} else if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
		asn1_time_str(X509_get0_notBefore(x), when, sizeof(when));
		ig_err_add(err, "%s: %s is not valid before %s (check the clock)", what, path,
			   when);
		rv = -EINVAL;
	} else {
		time_t soon = time(NULL) + 7 * 86400;
		if (X509_cmp_time(X509_get0_notAfter(x), &soon) <= 0) {
			asn1_time_str(X509_get0_notAfter(x), when, sizeof(when));
			ig_warn("TLS certificate expires within 7 days; renew it",
				"file=%s "
				"not_after=\"%s\"",
				path, when);
		}
	}
	X509_free(x);
	return rv;
}

int ig_tls_config_load(const char *dir, bool server, const char *server_name, const char *what,
		       nng_tls_config **out, struct ig_err *err)
{
	char *crt = NULL, *key = NULL, *ca = NULL, path[4096];
	nng_tls_config *cfg = NULL;
	int rv;

	*out = NULL;
	if ((rv = ig_tls_init()) < 0) {
		ig_err_add(err, "%s: cannot register the TLS engine with nng", what);
		return rv;
	}
	if (!(crt = read_pem(dir, "tls.crt", what, err)) ||
	    !(key = read_pem(dir, "tls.key", what, err)) ||
	    !(ca = read_pem(dir, "ca.crt", what, err))) {
		rv = -ENOENT;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/tls.crt", dir);
	if ((rv = check_dates(crt, path, what, err)) < 0)
		goto out;
	if ((rv = nng_tls_config_alloc(&cfg, server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT))) {
		ig_err_add(err, "%s: %s", what, nng_strerror(rv));
		rv = -ENOMEM;
		goto out;
	}
	tl_err[0] = '\0';
	if ((rv = nng_tls_config_ca_chain(cfg, ca, NULL)) != 0) {
		ig_err_add(err, "%s: %s/ca.crt: %s", what, dir, tl_err);
		rv = -EINVAL;
		goto out;
	}
	if ((rv = nng_tls_config_own_cert(cfg, crt, key, NULL)) != 0) {
		ig_err_add(err, "%s: %s/tls.crt + tls.key: %s", what, dir, tl_err);
		rv = -EINVAL;
		goto out;
	}
	nng_tls_config_version(cfg, NNG_TLS_1_2, NNG_TLS_1_3);
	nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED);
	if (!server && server_name && *server_name)
		nng_tls_config_server_name(cfg, server_name);
	*out = cfg;
	cfg = NULL;
	rv = 0;
out:
	if (cfg)
		nng_tls_config_free(cfg);
	free(crt);
	free(key);
	free(ca);
	return rv;
}

int ig_tls_cert_names(const char *dir, struct ig_tls_peer *out, struct ig_err *err)
{
	char *crt = read_pem(dir, "tls.crt", "tls", err);
	BIO *b;
	X509 *x;

	memset(out, 0, sizeof(*out));
	if (!crt)
		return -ENOENT;
	b = BIO_new_mem_buf(crt, -1);
	x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	free(crt);
	if (!x) {
		ERR_clear_error();
		ig_err_add(err, "%s/tls.crt holds no PEM certificate", dir);
		return -EINVAL;
	}
	x509_names(x, out);
	X509_free(x);
	ERR_clear_error();
	return (int)out->nnames;
}

int ig_tls_peer(nng_pipe p, struct ig_tls_peer *out)
{
	bool v = false;
	int rv;

	memset(out, 0, sizeof(*out));
	tl_query = out;
	rv = nng_pipe_get_bool(p, NNG_OPT_TLS_VERIFIED, &v);
	tl_query = NULL;
	if (rv != 0 || !v || !out->verified) {
		memset(out, 0, sizeof(*out));
		return -ENOENT;
	}
	return 0;
}

bool ig_tls_peer_has(const struct ig_tls_peer *peer, const char *name)
{
	for (uint32_t i = 0; name && i < peer->nnames; i++)
		if (!strcmp(peer->names[i], name))
			return true;
	return false;
}

void ig_tls_fail_counts(uint64_t out[IG_TLS_FAIL__COUNT])
{
	for (int i = 0; i < IG_TLS_FAIL__COUNT; i++)
		out[i] = __atomic_load_n(&fail_counts[i], __ATOMIC_RELAXED);
}

bool ig_tls_watch_changed(struct ig_tls_watch *w, const char *dir)
{
	static const char *const files[] = { "tls.crt", "tls.key", "ca.crt" };
	uint64_t sig = 1469598103934665603ull;
	char path[4096];

	for (size_t i = 0; i < 3; i++) {
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		uint64_t v[4] = { 0 };
		if (stat(path, &st) == 0) {
			v[0] = (uint64_t)st.st_ino;
			v[1] = (uint64_t)st.st_size;
			v[2] = (uint64_t)st.st_mtim.tv_sec;
			v[3] = (uint64_t)st.st_mtim.tv_nsec;
		}
		for (size_t j = 0; j < 4; j++)
			sig = (sig ^ v[j]) * 1099511628211ull;
	}
	if (!w->init) {
		w->init = true;
		w->sig = sig;
		return false;
	}
	if (sig == w->sig)
		return false;
	w->sig = sig;
	return true;
}

bool ig_tls_url_is_tls(const char *url)
{
	return url && !strncmp(url, "tls+", 4);
}

void ig_tls_url_host(const char *url, char *buf, size_t len)
{
	const char *p = url ? strstr(url, "://") : NULL;
	size_t n = 0;

	buf[0] = '\0';
	if (!p)
		return;
	p += 3;
	if (*p == '[') { /* [v6]:port */
		const char *e = strchr(p, ']');
		if (!e)
			return;
		n = (size_t)(e - p - 1);
		p++;
	} else {
		n = strcspn(p, ":/");
	}
	if (n >= len)
		n = len - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
}
