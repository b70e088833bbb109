/* fuzz_archive: what `ingrainctl archive query` reads from a bucket, on
 * arbitrary bytes: archive lines (archive_line.h) and index documents
 * (archive_index.h).
 *
 * The input is split at its first NUL: before it, lines for the line parser
 * and the index builder; after it, an index document. Beyond "no crash, no
 * leak, no overread" it checks properties: a parsed line's slices lie inside
 * the line or the scratch buffer, and an index built from the lines parses
 * back, names its object, counts every line and admits (may_equal) every
 * value the parser saw for a covered tag: an index never rules out a record
 * it was built from.
 *
 * Seeds: tests/fuzz/corpus/fuzz_archive/ (stored lines, escapes, a valid
 * index, broken ones).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "archive_index.h"
#include "archive_line.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

static void inside(const struct ig_aline *l, const char *s, size_t n, const struct ig_aval *v)
{
	if (v->type == IG_AVAL_ABSENT || v->type == IG_AVAL_OTHER)
		return;
	check((v->p >= s && v->p + v->len <= s + n) ||
	      (v->p >= l->scratch && v->p + v->len <= l->scratch + l->scratch_cap));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = { "path", "pod", "process" };
	const char *in = (const char *)data, *nul = memchr(in, '\0', size);
	size_t nlines = nul ? (size_t)(nul - in) : size;
	struct ig_aline l, l2;
	struct ig_aindex_builder *b = ig_aindex_builder_new(keys, 3);
	uint64_t count = 0;

	if (!b)
		return 0;
	ig_aline_init(&l);
	ig_aline_init(&l2);
	for (const char *p = in, *e = in + nlines; p < e;) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(e - p);
		const char *why;
		size_t at;
		ig_aindex_add(b, p, n);
		count++;
		if (!ig_aline_parse(&l, p, n, &why, &at)) {
			inside(&l, p, n, &l.ts);
			inside(&l, p, n, &l.name);
			for (uint32_t i = 0; i < l.ntags; i++) {
				check(l.tags[i].klen <= n);
				inside(&l, p, n, &l.tags[i].v);
			}
		} else {
			check(why && at <= n);
		}
		p += n + 1;
	}
	char *doc = NULL, why[256];
	size_t dl;
	if (!ig_aindex_finish(b, "k/x.jsonl.gz", in, nlines, UINT64_MAX, 0, &doc, &dl)) {
		struct ig_aindex *ix = ig_aindex_parse(doc, dl, why, sizeof(why));
		check(ix != NULL);
		check(!ig_aindex_binding_mismatch(ix, "k/x.jsonl.gz", nlines, NULL));
		check(ig_aindex_records(ix) == count);
		/* Every covered value the parser sees must be admitted. */
		for (const char *p = in, *e = in + nlines; p < e;) {
			const char *nl = memchr(p, '\n', (size_t)(e - p));
			size_t n = nl ? (size_t)(nl - p) : (size_t)(e - p), at;
			const char *w;
			if (!ig_aline_parse(&l2, p, n, &w, &at)) {
				for (int k = 0; k < 3; k++) {
					const struct ig_aval *v =
						ig_aline_tag(&l2, keys[k], strlen(keys[k]));
					if (v && v->type != IG_AVAL_OTHER)
						check(ig_aindex_may_equal(ix, keys[k], v->p,
									  v->len));
				}
			}
			p += n + 1;
		}
		ig_aindex_free(ix);
		free(doc);
	}
	if (nul) {
		struct ig_aindex *ix =
			ig_aindex_parse(nul + 1, size - nlines - 1, why, sizeof(why));
		if (ix) {
			int64_t lo, hi;
			ig_aindex_range(ix, &lo, &hi);
			(void)ig_aindex_may_equal(ix, "path", "/etc/passwd", 11);
			(void)ig_aindex_binding_mismatch(ix, "k", 1, "\"e\"");
			ig_aindex_free(ix);
		}
	}
	ig_aline_free(&l);
	ig_aline_free(&l2);
	ig_aindex_builder_free(b);
	return 0;
}
