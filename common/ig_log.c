/* ig_log: see ig_log.h. Lines go to stderr, written with one write() each so
 * that lines from several threads never interleave. */
#include "ig_log.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ig_time.h"

static const char *log_component = "ingrain";
static enum ig_log_level log_level = IG_LOG_INFO;
static enum ig_log_format log_format = IG_LOG_LOGFMT;
static const char *const level_names[] = { "debug", "info", "warn", "error" };

void ig_log_init(const char *component, enum ig_log_level level, enum ig_log_format format)
{
	log_component = component;
	log_level = level;
	log_format = format;
}

void ig_log_set_level(enum ig_log_level level)
{
	log_level = level;
}

void ig_log_set_format(enum ig_log_format format)
{
	log_format = format;
}

bool ig_log_enabled(enum ig_log_level level)
{
	return level >= log_level;
}

int ig_log_level_parse(const char *s, enum ig_log_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (!strcmp(s, level_names[i])) {
			*out = (enum ig_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

int ig_log_format_parse(const char *s, enum ig_log_format *out)
{
	if (!strcmp(s, "logfmt"))
		*out = IG_LOG_LOGFMT;
	else if (!strcmp(s, "json"))
		*out = IG_LOG_JSON;
	else
		return -EINVAL;
	return 0;
}

/* Appends s to buf as a quoted string in the given style. */
static size_t put_quoted(char *buf, size_t pos, size_t cap, const char *s, size_t n, bool json)
{
	if (pos < cap)
		buf[pos++] = '"';
	for (size_t i = 0; i < n && pos + 8 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			buf[pos++] = '\\';
			buf[pos++] = (char)c;
		} else if (c == '\n') {
			buf[pos++] = '\\';
			buf[pos++] = 'n';
		} else if (c < 0x20) {
			pos += (size_t)snprintf(buf + pos, cap - pos, json ? "\\u%04x" : "\\x%02x",
						c);
		} else {
			buf[pos++] = (char)c;
		}
	}
	if (pos < cap)
		buf[pos++] = '"';
	return pos;
}

static bool needs_quotes(const char *s, size_t n)
{
	if (n == 0)
		return true;
	for (size_t i = 0; i < n; i++)
		if (isspace((unsigned char)s[i]) || s[i] == '"' || s[i] == '=' ||
		    (unsigned char)s[i] < 0x20)
			return true;
	return false;
}

static bool is_number(const char *s, size_t n)
{
	size_t i = (n && (s[0] == '-')) ? 1 : 0;
	if (i == n)
		return false;
	for (; i < n; i++)
		if (!isdigit((unsigned char)s[i]) && s[i] != '.')
			return false;
	return true;
}

/* Walks "k=v k2="v 2"" pairs and re-emits them in the chosen format. */
static size_t put_kv(char *buf, size_t pos, size_t cap, const char *kv, bool json)
{
	const char *p = kv;
	while (*p) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		const char *k = p;
		while (*p && *p != '=' && *p != ' ')
			p++;
		size_t klen = (size_t)(p - k);
		const char *v = "";
		size_t vlen = 0;
		if (*p == '=') {
			p++;
			if (*p == '"') {
				v = ++p;
				while (*p && !(*p == '"' && p[-1] != '\\'))
					p++;
				vlen = (size_t)(p - v);
				if (*p == '"')
					p++;
			} else {
				v = p;
				while (*p && *p != ' ')
					p++;
				vlen = (size_t)(p - v);
			}
		}
		if (pos + klen + 8 >= cap)
			break;
		if (json) {
			buf[pos++] = ',';
			pos = put_quoted(buf, pos, cap, k, klen, true);
			buf[pos++] = ':';
			if (is_number(v, vlen)) {
				memcpy(buf + pos, v, vlen < cap - pos ? vlen : 0);
				pos += vlen < cap - pos ? vlen : 0;
			} else {
				pos = put_quoted(buf, pos, cap, v, vlen, true);
			}
		} else {
			buf[pos++] = ' ';
			memcpy(buf + pos, k, klen);
			pos += klen;
			buf[pos++] = '=';
			if (needs_quotes(v, vlen)) {
				pos = put_quoted(buf, pos, cap, v, vlen, false);
			} else if (vlen < cap - pos) {
				memcpy(buf + pos, v, vlen);
				pos += vlen;
			}
		}
	}
	return pos;
}

void ig_log(enum ig_log_level level, const char *msg, const char *kvfmt, ...)
{
	char kv[2048] = "", line[4096], ts[40];
	size_t pos = 0, cap = sizeof(line) - 2;
	bool json = log_format == IG_LOG_JSON;
	int saved = errno;

	if (level < log_level)
		return;
	if (kvfmt) {
		va_list ap;
		va_start(ap, kvfmt);
		vsnprintf(kv, sizeof(kv), kvfmt, ap);
		va_end(ap);
	}
	ig_fmt_rfc3339(ig_wall_ns(), ts, sizeof(ts));
	if (json) {
		pos += (size_t)snprintf(
			line, cap, "{\"ts\":\"%s\",\"level\":\"%s\",\"comp\":\"%s\",\"msg\":", ts,
			level_names[level], log_component);
		pos = put_quoted(line, pos, cap, msg, strlen(msg), true);
		pos = put_kv(line, pos, cap, kv, true);
		if (pos < cap)
			line[pos++] = '}';
	} else {
		pos += (size_t)snprintf(line, cap, "ts=%s level=%s comp=%s msg=", ts,
					level_names[level], log_component);
		pos = put_quoted(line, pos, cap, msg, strlen(msg), false);
		pos = put_kv(line, pos, cap, kv, false);
	}
	if (pos > cap)
		pos = cap;
	line[pos++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, pos);
	(void)w;
	errno = saved;
}

bool ig_ratelimit_ok(struct ig_ratelimit *rl, uint64_t *suppressed)
{
	uint64_t now = ig_mono_ns();
	if (rl->last_ns && now - rl->last_ns < rl->interval_ns) {
		rl->suppressed++;
		return false;
	}
	if (suppressed)
		*suppressed = rl->suppressed;
	rl->suppressed = 0;
	rl->last_ns = now;
	return true;
}
