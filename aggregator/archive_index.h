/* archive_index: the small index the S3 backend writes beside each archive
 * object, and its reader (docs/archive.md, "Object indexes", is the format's
 * contract).
 *
 * For the data object  <dir>/<name>.jsonl.gz  the index is the object
 * <dir>/_<name>.jsonl.gz.idx  (a leading '_' hides it from Athena, Trino and
 * Hive, which skip such files; DuckDB's and jq's '*.jsonl.gz' globs do not
 * match it). It is one JSON document:
 *
 *   {"ingrain_index":1, "object":"<data key>", "object_bytes":N,
 *    "object_etag":"\"<md5 hex>\"", "records":R, "record_bytes":B,
 *    "ts_min":"<RFC 3339>", "ts_max":"<RFC 3339>",
 *    "keys":["path","process",...],                 tags the index covers
 *    "values":{"process":["cat","sshd"],...},        complete value lists of
 *                                                    covered tags with few values
 *    "bloom":{"m":BITS,"k":HASHES,"bits":"<base64>"},
 *    "crc32":"<8 hex>"}                              over the bytes before ,"crc32"
 *
 * The Bloom filter holds "<tag>=<value>" for every value (archive_line.h's
 * text) of every covered tag; bit i of the filter is bit (i % 8) of byte
 * i / 8; the k positions of an item are (h1 + j * h2) mod m, j = 0..k-1,
 * where h1, h2 are the first and second little-endian 64-bit words of the
 * item's SHA-256 (h2 |= 1). A covered tag absent from "values" has too many
 * values to list; one present with [] never occurs in the object.
 *
 * A query may skip an object when its index is intact (CRC), names the object
 * (key, size and ETag as S3 lists them) and proves that no record can match:
 * the time range misses the window, or an equality filter on a covered tag
 * is absent from its value list or from the filter, or no listed value
 * matches a regex filter.
 */
#ifndef IG_ARCHIVE_INDEX_H
#define IG_ARCHIVE_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "archive_line.h"

#define IG_AINDEX_SUFFIX ".idx"
#define IG_AINDEX_MAX_VALUES 32 /* listed exactly when a tag has at most this many */

/* --- building (S3 backend) -------------------------------------------- */

struct ig_aindex_builder;

/* keys: the tags to cover (copied). NULL on allocation failure. */
struct ig_aindex_builder *ig_aindex_builder_new(const char *const *keys, size_t nkeys);
void ig_aindex_builder_free(struct ig_aindex_builder *b);
/* Forgets what was added (a new batch opens). */
void ig_aindex_reset(struct ig_aindex_builder *b);
/* Accounts one archive line (without its newline). A line the parser
 * rejects only counts as a record (the writer produced it, so this does not
 * happen). */
void ig_aindex_add(struct ig_aindex_builder *b, const char *line, size_t len);
/* Serialises the index of the object `key` whose bytes are data[0..len)
 * (uploaded in one PUT, or in part_size parts when len > multipart_threshold:
 * that decides the ETag S3 will list), then resets the builder for the next
 * batch. *out is malloc'd. 0 or -ENOMEM. */
int ig_aindex_finish(struct ig_aindex_builder *b, const char *key, const void *data, size_t len,
		     uint64_t multipart_threshold, uint64_t part_size, char **out, size_t *outlen);
/* The index key of a data key (malloc'd), NULL on allocation failure. */
char *ig_aindex_key(const char *data_key);
/* True when key names an index object. */
bool ig_aindex_is_index_key(const char *key);
/* The S3 ETag of data uploaded whole or in parts, quoted, into out[48]. */
void ig_aindex_etag(const void *data, size_t len, uint64_t multipart_threshold, uint64_t part_size,
		    char out[48]);

/* --- reading (archive query) ------------------------------------------- */

struct ig_aindex;

/* Parses an index document. NULL with a reason in why (e.g. "crc32 does not
 * match: the index is corrupt") when it is not a valid index. */
struct ig_aindex *ig_aindex_parse(const char *doc, size_t len, char *why, size_t whylen);
void ig_aindex_free(struct ig_aindex *ix);
/* Does the index describe this object as S3 listed it? NULL when it does,
 * else what differs. etag may be NULL (not compared). */
const char *ig_aindex_binding_mismatch(const struct ig_aindex *ix, const char *key, uint64_t size,
				       const char *etag);
/* The object's record time range, ns. */
void ig_aindex_range(const struct ig_aindex *ix, int64_t *min_ns, int64_t *max_ns);
uint64_t ig_aindex_records(const struct ig_aindex *ix);
/* Can a record whose tag `key` equals `val` be in the object? */
bool ig_aindex_may_equal(const struct ig_aindex *ix, const char *key, const char *val, size_t vlen);
/* Does the index cover `key`, and list all its values? Then values, lens and n are
 * the list (pointers valid while ix lives). */
bool ig_aindex_values(const struct ig_aindex *ix, const char *key, const char *const **values,
		      const size_t **lens, size_t *n);

#endif
