/* s3_reader: read access to an S3 backend's bucket, for `ingrainctl archive`.
 *
 * It is the backend itself (backend_s3.c) opened without a spool: the same
 * option table, endpoint and addressing rules, credential chain (static keys,
 * environment, web identity through STS) and SigV4 signer that write the
 * archive, so a query reaches exactly the bucket the aggregator writes, with
 * the same configuration file. The caller sends the signed requests itself
 * (archive_query.c uses libcurl's multi interface for parallel streaming).
 */
#ifndef IG_S3_READER_H
#define IG_S3_READER_H

#include <stddef.h>

#include "ig_err.h"

struct ig_s3_reader;

/* conf: the backend's options, filled by ig_cfg_apply with ig_backend_s3.opts
 * (it must outlive the reader). NULL with the reason in err (e.g. no
 * credentials). */
struct ig_s3_reader *ig_s3_reader_new(const void *conf, const char *name, struct ig_err *err);
void ig_s3_reader_free(struct ig_s3_reader *r);
/* Signs a GET of `key` (NULL = the bucket itself, e.g. for ListObjectsV2 with
 * query "list-type=2&prefix=..."; query values already URI-encoded, or NULL).
 * *url and *headers (NULL-terminated "Name: value" lines) are malloc'd: free
 * with ig_s3_reader_signed_free. 0, -ENOMEM, or -EACCES with why (web
 * identity refused by STS) / -EAGAIN (STS unreachable). */
int ig_s3_reader_sign_get(struct ig_s3_reader *r, const char *key, const char *query, char **url,
			  char ***headers, char *why, size_t whylen);
void ig_s3_reader_signed_free(char *url, char **headers);
/* The backend's bucket, key prefix ("" or "p"), cluster and endpoint
 * ("https://host[/bucket]") for messages. */
const char *ig_s3_reader_bucket(const struct ig_s3_reader *r);
const char *ig_s3_reader_prefix(const struct ig_s3_reader *r);
const char *ig_s3_reader_cluster(const struct ig_s3_reader *r);
const char *ig_s3_reader_endpoint(const struct ig_s3_reader *r);

#endif
