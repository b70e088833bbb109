/* ig_log: one line per log event, logfmt or JSON.
 *
 *   ig_log(IG_LOG_INFO, "probe attached", "probe=%s programs=%d", name, n);
 *
 * The message is a constant sentence; the optional key=value part is a printf
 * format whose output is a space-separated list of k=v pairs (quote values
 * with spaces as k="a b"). In JSON mode the pairs become object members.
 * Per-event conditions must use a struct ig_ratelimit so a flood of bad input
 * cannot flood the log.
 */
#ifndef IG_LOG_H
#define IG_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum ig_log_level { IG_LOG_DEBUG, IG_LOG_INFO, IG_LOG_WARN, IG_LOG_ERROR };
enum ig_log_format { IG_LOG_LOGFMT, IG_LOG_JSON };

void ig_log_init(const char *component, enum ig_log_level level, enum ig_log_format format);
void ig_log_set_level(enum ig_log_level level);
void ig_log_set_format(enum ig_log_format format);
bool ig_log_enabled(enum ig_log_level level);
/* Parses "debug|info|warn|error" / "logfmt|json"; -EINVAL when unknown. */
int ig_log_level_parse(const char *s, enum ig_log_level *out);
int ig_log_format_parse(const char *s, enum ig_log_format *out);

void ig_log(enum ig_log_level level, const char *msg, const char *kvfmt, ...)
	__attribute__((format(printf, 3, 4)));

#define ig_debug(msg, ...) ig_log(IG_LOG_DEBUG, msg, __VA_ARGS__)
#define ig_info(msg, ...) ig_log(IG_LOG_INFO, msg, __VA_ARGS__)
#define ig_warn(msg, ...) ig_log(IG_LOG_WARN, msg, __VA_ARGS__)
#define ig_error(msg, ...) ig_log(IG_LOG_ERROR, msg, __VA_ARGS__)

/* At most one log line per interval; the lines skipped meanwhile are counted
 * and reported as suppressed=N on the next line that passes. */
struct ig_ratelimit {
	uint64_t interval_ns;
	uint64_t last_ns;
	uint64_t suppressed;
};
#define IG_RATELIMIT_INIT(interval_ns) \
	{                              \
		(interval_ns), 0, 0    \
	}
/* True when a line may be logged now; *suppressed receives how many were
 * skipped since the last one. */
bool ig_ratelimit_ok(struct ig_ratelimit *rl, uint64_t *suppressed);

#endif
