/* archive_query: `ingrainctl archive query`'s engine.
 *
 *   1. List the partitions the window can touch: the hours from the window's
 *      start to its end, plus one (late records sit in the next hour's
 *      partition, docs/archive.md), each a ListObjectsV2 prefix
 *      <prefix>/cluster=<c>/date=YYYY-MM-DD/hour=HH/.
 *   2. Read the index of each data object (archive_index.h) and skip the
 *      objects it proves cannot match. An index that is corrupt, or that
 *      does not describe its object (key, size, ETag), is reported and its
 *      object scanned; objects without an index are scanned.
 *   3. Fetch the remaining objects in parallel (libcurl multi, at most
 *      `parallel` transfers, each streaming: no object is held whole),
 *      gunzip as the bytes arrive, split lines, parse (archive_line.h),
 *      filter, print. Results come out in object key order (time order of
 *      the partitions), each object's in line order.
 *
 * Damaged data never stops a query: a truncated gzip stream, a line that is
 * not JSON, a line longer than max_line, an object that cannot be fetched,
 * or an index whose claims the object contradicts are each reported on
 * stderr with the object's key and counted; the query goes on. Only a
 * listing failure (endpoint unreachable, no such bucket, access denied)
 * stops it: then nothing trustworthy could be said.
 */
#ifndef IG_ARCHIVE_QUERY_H
#define IG_ARCHIVE_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "ig_err.h"
#include "s3_reader.h"

enum ig_aq_op { IG_AQ_EQ, IG_AQ_NE, IG_AQ_RE, IG_AQ_NRE };
enum ig_aq_field { IG_AQ_TAG, IG_AQ_NAME, IG_AQ_KIND, IG_AQ_PROBE };
enum ig_aq_format { IG_AQ_TABLE, IG_AQ_JSONL, IG_AQ_CSV };

struct ig_aq_filter {
	enum ig_aq_field field;
	char *key; /* the tag (or field) name */
	enum ig_aq_op op;
	char *val;
	size_t vlen;
	pcre2_code *re;
	pcre2_match_data *md;
};

struct ig_aq_opts {
	int64_t from_ns, to_ns; /* records with from <= ts < to */
	struct ig_aq_filter *filters; /* ANDed */
	size_t nfilters;
	enum ig_aq_format format;
	bool use_index;
	unsigned parallel; /* transfers at once */
	size_t max_line; /* longer lines are reported and skipped */
	bool progress; /* a progress line on stderr */
	const char *cluster; /* NULL = the backend's */
	FILE *out;
};

struct ig_aq_stats {
	uint64_t partitions, objects, object_bytes; /* data objects in the partitions */
	uint64_t other_objects; /* not jsonl (msgpack...): not read */
	uint64_t indexes, index_bytes; /* indexes read */
	uint64_t skipped, skipped_bytes; /* objects the index ruled out */
	uint64_t unindexed; /* data objects without an index */
	uint64_t scanned, bytes_read; /* objects fetched, their bytes */
	uint64_t records, record_bytes; /* lines read, uncompressed bytes */
	uint64_t matches;
	uint64_t bad_objects; /* truncated/corrupt stream, fetch failed */
	uint64_t bad_lines; /* not JSON, too long */
	uint64_t bad_indexes; /* corrupt or not this object's */
	uint64_t index_lies; /* the object contradicted its index */
	double seconds;
};

/* 0 when the query ran (damaged objects are counted in st), or -errno with
 * what to do in err (listing failed). */
int ig_archive_query(struct ig_s3_reader *r, const struct ig_aq_opts *o, struct ig_aq_stats *st,
		     struct ig_err *err);
/* Parses "path=/etc/passwd", "path~^/etc/", "pod!=x", "process!~^ssh"; a key
 * name, kind or probe is the record's member, "tags.<k>" forces a tag.
 * 0, or -EINVAL with a message in msg. */
int ig_aq_filter_parse(const char *arg, struct ig_aq_filter *f, char *msg, size_t msglen);
void ig_aq_filter_free(struct ig_aq_filter *f);
/* The stats as one JSON object (no newline). */
void ig_aq_stats_json(const struct ig_aq_stats *st, FILE *f);

#endif
