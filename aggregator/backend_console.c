/* backend_console: metrics as lines on stdout or appended to a file, for
 * people (format: text) and for tools (format: json, one object per line).
 *
 *   text: 2026-11-25T12:00:00.123456789Z file.open ns/pod container=c process=cat pid=1 path=/etc/passwd
 *   json: {"ts":"2026-11-25T12:00:00.123456789Z","name":"file.open","kind":"counter","value":1,
 *          "tags":{"namespace":"ns","pod":"pod","pid":1,"path":"/etc/passwd"}}
 *
 * Text puts the identity first (namespace/pod, container) and then the other
 * tags as k=v in the metric's order; a value with spaces, quotes, '=' or
 * control characters is quoted with C-style escapes, so one metric is always
 * one line. JSON escapes every string for any input bytes: control characters
 * and bytes that are not valid UTF-8 become \u00XX, so each line parses even
 * when a path is not UTF-8. Tags that came from numbers (pid, ret) are JSON
 * numbers.
 *
 * Lines are formatted into one buffer and written with write(2) when it holds
 * 64 KiB, when flush_interval has passed (tick), on flush(), and on sync()
 * (before an envelope is acked: the lines are then in the kernel's hands).
 * A failed write counts the buffered lines as dropped and an error; it is
 * logged at most once a minute and never stops the pipeline.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ig_backend.h"
#include "ig_log.h"
#include "ig_time.h"

#define CONSOLE_FLUSH_AT (64 * 1024)
#define CONSOLE_MAX_BUF (16 * 1024 * 1024)

enum console_format { FMT_TEXT, FMT_JSON };

struct console_conf {
	int format;
	char *output;
	uint64_t flush_interval_ns;
};

struct console {
	char *name;
	char *path; /* NULL = stdout */
	int fd;
	int format;
	uint64_t interval_ns, last_flush_ns;
	char *buf;
	size_t len, cap;
	bool oom; /* the line being formatted did not fit */
	uint64_t pending; /* lines in buf */
	struct ig_backend_stats st;
	struct ig_ratelimit rl;
};

static const char *const format_choices[] = { "text", "json", NULL };

static const struct ig_opt console_opts[] = {
	{ "format", IG_OPT_ENUM, "text", offsetof(struct console_conf, format),
	  "`text`: one human-readable line per metric; `json`: one JSON object per line "
	  "(ts, name, kind, value, tags).",
	  .choices = format_choices },
	{ "output", IG_OPT_STR, "-", offsetof(struct console_conf, output),
	  "`-` for standard output, or a file path (opened for appending, created if missing).",
	  .flags = 0 },
	{ "flush_interval", IG_OPT_DURATION, "100ms",
	  offsetof(struct console_conf, flush_interval_ns),
	  "Buffered lines are written at least this often (and before each batch is acknowledged).",
	  .flags = 0 },
	{ 0 },
};

/* ---- buffer ---- */

static bool grow_buf(struct console *c, size_t extra)
{
	size_t want = c->len + extra, ncap;
	char *nb;

	ncap = c->cap ? c->cap : CONSOLE_FLUSH_AT * 2;
	while (ncap < want)
		ncap *= 2;
	if (ncap > CONSOLE_MAX_BUF || !(nb = realloc(c->buf, ncap))) {
		c->oom = true;
		return false;
	}
	c->buf = nb;
	c->cap = ncap;
	return true;
}

/* Inline: a line is ~50 calls of put/putch, nearly all with room. */
static inline bool reserve(struct console *c, size_t extra)
{
	if (c->oom)
		return false;
	if (c->len + extra <= c->cap)
		return true;
	return grow_buf(c, extra);
}

static inline void put(struct console *c, const char *s, size_t n)
{
	if (!reserve(c, n))
		return;
	memcpy(c->buf + c->len, s, n);
	c->len += n;
}

static inline void puts_(struct console *c, const char *s)
{
	put(c, s, strlen(s));
}

static inline void putch(struct console *c, char ch)
{
	if (reserve(c, 1))
		c->buf[c->len++] = ch;
}

static void write_out(struct console *c)
{
	size_t off = 0;

	while (off < c->len) {
		ssize_t w = write(c->fd, c->buf + off, c->len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : EIO;
			uint64_t sup = 0;

			c->st.errors++;
			c->st.dropped += c->pending;
			if (ig_ratelimit_ok(&c->rl, &sup))
				ig_error(
					"console backend cannot write; lines are dropped (check the disk or the output path)",
					"backend=%s output=%s error=\"%s\" lines=%llu suppressed=%llu",
					c->name, c->path ? c->path : "-", strerror(e),
					(unsigned long long)c->pending, (unsigned long long)sup);
			c->len = 0;
			c->pending = 0;
			return;
		}
		off += (size_t)w;
	}
	c->st.sent += c->pending;
	c->len = 0;
	c->pending = 0;
}

/* ---- formatting ---- */

/* Shortest of %.15g / %.17g that reads back as v. */
static const char *fmt_double(double v, char *buf, size_t len)
{
	snprintf(buf, len, "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, len, "%.17g", v);
	return buf;
}

/* Whether s needs quoting (or, as a key, replacing); *len = its length
 * when it does not. */
static bool text_needs_quotes_len(const char *s, size_t *len)
{
	const char *p = s;

	if (!*s)
		return true;
	for (; *p; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch <= ' ' || ch == '"' || ch == '=' || ch == '\\' || ch == 0x7f)
			return true;
	}
	*len = (size_t)(p - s);
	return false;
}

static void put_text_value(struct console *c, const char *s)
{
	char esc[8];
	size_t len;

	if (!text_needs_quotes_len(s, &len)) {
		put(c, s, len);
		return;
	}
	putch(c, '"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			putch(c, '\\');
			putch(c, (char)ch);
		} else if (ch == '\n') {
			puts_(c, "\\n");
		} else if (ch == '\t') {
			puts_(c, "\\t");
		} else if (ch == '\r') {
			puts_(c, "\\r");
		} else if (ch < ' ' || ch == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", ch);
			puts_(c, esc);
		} else {
			putch(c, (char)ch);
		}
	}
	putch(c, '"');
}

/* Keys are names: anything that would break k=v parsing becomes '_'. */
static void put_text_key(struct console *c, const char *s)
{
	if (!*s) {
		putch(c, '_');
		return;
	}
	size_t len;

	if (!text_needs_quotes_len(s, &len)) { /* the usual case: copied as it is */
		put(c, s, len);
		return;
	}
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		putch(c, ch <= ' ' || ch == '"' || ch == '=' || ch == '\\' || ch == 0x7f ?
				 '_' :
				 (char)ch);
	}
}

enum { K_OTHER, K_NS, K_POD, K_CTR };

/* Which of the keys format_text puts first a tag key is: the first byte
 * decides for nearly every key, so one pass classifies all tags. */
static int text_key_class(const char *k)
{
	switch (k[0]) {
	case 'n':
		return !strcmp(k, "namespace") ? K_NS : K_OTHER;
	case 'p':
		return !strcmp(k, "pod") ? K_POD : K_OTHER;
	case 'c':
		return !strcmp(k, "container") ? K_CTR : K_OTHER;
	}
	return K_OTHER;
}

static void format_text(struct console *c, const struct ig_metric *m)
{
	const char *ns = NULL, *pod = NULL, *ctr = NULL;
	uint8_t cls[IG_MAX_TAGS];
	bool nspod;
	char ts[40], num[40];

	/* As ig_metric_tag: the first tag of each key. */
	for (uint32_t i = 0; i < m->ntags && i < IG_MAX_TAGS; i++) {
		cls[i] = (uint8_t)text_key_class(m->tags[i].key);
		if (cls[i] == K_NS && !ns)
			ns = m->tags[i].val;
		else if (cls[i] == K_POD && !pod)
			pod = m->tags[i].val;
		else if (cls[i] == K_CTR && !ctr)
			ctr = m->tags[i].val;
	}
	nspod = ns && pod;

	puts_(c, ig_fmt_rfc3339(m->ts_ns ? m->ts_ns : ig_wall_ns(), ts, sizeof(ts)));
	putch(c, ' ');
	put_text_key(c, m->name ? m->name : "");
	if (m->kind != IG_M_COUNTER) {
		puts_(c, " kind=");
		puts_(c, ig_metric_kind_name(m->kind));
	}
	if (m->kind == IG_M_SET) {
		puts_(c, " member=");
		put_text_value(c, m->set_member ? m->set_member : "");
	} else if (m->kind != IG_M_COUNTER || m->value != 1) {
		puts_(c, " value=");
		puts_(c, fmt_double(m->value, num, sizeof(num)));
	}
	if (nspod) {
		putch(c, ' ');
		put_text_value(c, ns);
		putch(c, '/');
		put_text_value(c, pod);
	}
	if (ctr) {
		puts_(c, " container=");
		put_text_value(c, ctr);
	}
	for (uint32_t i = 0; i < m->ntags && i < IG_MAX_TAGS; i++) {
		const struct ig_tag *t = &m->tags[i];

		if ((nspod && (cls[i] == K_NS || cls[i] == K_POD)) || (ctr && cls[i] == K_CTR))
			continue;
		putch(c, ' ');
		put_text_key(c, t->key);
		putch(c, '=');
		put_text_value(c, t->val ? t->val : "");
	}
	putch(c, '\n');
}

/* Length of the valid UTF-8 sequence at s (2..4), or 0. */
static int utf8_seq(const unsigned char *s)
{
	unsigned char c0 = s[0];
	unsigned char lo = 0x80, hi = 0xbf;
	int n;

	if (c0 >= 0xc2 && c0 <= 0xdf)
		n = 2;
	else if (c0 >= 0xe0 && c0 <= 0xef)
		n = 3;
	else if (c0 >= 0xf0 && c0 <= 0xf4)
		n = 4;
	else
		return 0;
	if (c0 == 0xe0)
		lo = 0xa0; /* overlong */
	else if (c0 == 0xed)
		hi = 0x9f; /* surrogates */
	else if (c0 == 0xf0)
		lo = 0x90; /* overlong */
	else if (c0 == 0xf4)
		hi = 0x8f; /* > U+10FFFF */
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (int i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

static void put_json_str(struct console *c, const char *str)
{
	const unsigned char *s = (const unsigned char *)(str ? str : "");
	char esc[8];

	putch(c, '"');
	while (*s) {
		unsigned char ch = *s;
		int n;

		if (ch == '"' || ch == '\\') {
			putch(c, '\\');
			putch(c, (char)ch);
			s++;
		} else if (ch == '\n') {
			puts_(c, "\\n");
			s++;
		} else if (ch == '\t') {
			puts_(c, "\\t");
			s++;
		} else if (ch == '\r') {
			puts_(c, "\\r");
			s++;
		} else if (ch < 0x20 || ch == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", ch);
			puts_(c, esc);
			s++;
		} else if (ch < 0x80) {
			putch(c, (char)ch);
			s++;
		} else if ((n = utf8_seq(s)) > 0) {
			put(c, (const char *)s, (size_t)n);
			s += n;
		} else {
			/* Not UTF-8: keep the byte visible as the Latin-1 code point. */
			snprintf(esc, sizeof(esc), "\\u%04x", ch);
			puts_(c, esc);
			s++;
		}
	}
	putch(c, '"');
}

/* JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool is_json_number(const char *s)
{
	if (!s)
		return false;
	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
		while (*s >= '0' && *s <= '9')
			s++;
	else
		return false;
	if (*s == '.') {
		s++;
		if (!(*s >= '0' && *s <= '9'))
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (!(*s >= '0' && *s <= '9'))
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return !*s;
}

static void format_json(struct console *c, const struct ig_metric *m)
{
	char ts[40], num[40];

	puts_(c, "{\"ts\":\"");
	puts_(c, ig_fmt_rfc3339(m->ts_ns ? m->ts_ns : ig_wall_ns(), ts, sizeof(ts)));
	puts_(c, "\",\"name\":");
	put_json_str(c, m->name);
	puts_(c, ",\"kind\":");
	put_json_str(c, ig_metric_kind_name(m->kind));
	puts_(c, ",\"value\":");
	puts_(c, isfinite(m->value) ? fmt_double(m->value, num, sizeof(num)) : "null");
	if (m->kind == IG_M_SET) {
		puts_(c, ",\"member\":");
		put_json_str(c, m->set_member);
	}
	puts_(c, ",\"tags\":{");
	for (uint32_t i = 0; i < m->ntags; i++) {
		const struct ig_tag *t = &m->tags[i];

		if (i)
			putch(c, ',');
		put_json_str(c, t->key);
		putch(c, ':');
		if (t->type == IG_TAG_NUM && is_json_number(t->val))
			puts_(c, t->val);
		else
			put_json_str(c, t->val);
	}
	puts_(c, "}}\n");
}

/* ---- ops ---- */

static void console_free(void *state)
{
	struct console *c = state;

	if (!c)
		return;
	if (c->len)
		write_out(c);
	if (c->path && c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c->path);
	free(c->name);
	free(c);
}

static int console_init(void **state, const void *conf, const char *name, struct ig_err *err)
{
	const struct console_conf *cf = conf;
	struct console *c;

	*state = NULL;
	if (!cf->output || !*cf->output) {
		ig_err_add(err, "output: is empty; use '-' for standard output or a file path");
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->name = strdup(name ? name : "console");
	c->format = cf->format;
	c->interval_ns = cf->flush_interval_ns;
	c->last_flush_ns = ig_mono_ns();
	c->rl = (struct ig_ratelimit)IG_RATELIMIT_INIT(60 * IG_NSEC_PER_SEC);
	if (!c->name || !reserve(c, CONSOLE_FLUSH_AT * 2)) {
		console_free(c);
		return -ENOMEM;
	}
	if (!strcmp(cf->output, "-")) {
		c->fd = STDOUT_FILENO;
	} else {
		c->path = strdup(cf->output);
		if (!c->path) {
			console_free(c);
			return -ENOMEM;
		}
		c->fd = open(c->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (c->fd < 0) {
			int e = errno;

			ig_err_add(
				err,
				"output: cannot open '%.200s' for appending: %s; check that the directory exists and the aggregator may write there",
				cf->output, strerror(e));
			console_free(c);
			return -e;
		}
	}
	*state = c;
	return 0;
}

static int console_write(void *state, const struct ig_metric *m)
{
	struct console *c = state;
	size_t start = c->len;

	c->st.received++;
	c->oom = false;
	if (c->format == FMT_JSON)
		format_json(c, m);
	else
		format_text(c, m);
	if (c->oom) {
		/* A line larger than CONSOLE_MAX_BUF, or no memory: drop it. */
		c->len = start;
		c->oom = false;
		c->st.dropped++;
		return -ENOMEM;
	}
	c->pending++;
	if (c->len >= CONSOLE_FLUSH_AT || !c->interval_ns)
		write_out(c);
	return 0;
}

static void console_tick(void *state, uint64_t now_ns)
{
	struct console *c = state;

	if (now_ns - c->last_flush_ns < c->interval_ns)
		return;
	c->last_flush_ns = now_ns;
	if (c->len)
		write_out(c);
}

static void console_flush(void *state)
{
	struct console *c = state;

	c->last_flush_ns = ig_mono_ns();
	if (c->len)
		write_out(c);
}

static void console_stats(void *state, struct ig_backend_stats *st)
{
	struct console *c = state;

	*st = c->st;
	st->queued = c->pending;
}

const struct ig_backend_ops ig_backend_console = {
	.type = "console",
	.summary = "Writes each metric as a line (text or JSON) to standard output or a file.",
	.opts = console_opts,
	.conf_size = sizeof(struct console_conf),
	.init = console_init,
	.write = console_write,
	.tick = console_tick,
	.flush = console_flush,
	.sync = console_flush,
	.stats = console_stats,
	.free = console_free,
};
