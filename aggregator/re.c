/* re: see re.h. */
#include "re.h"

#include <stdio.h>

pcre2_code *ig_re_compile(const char *pattern, char *msg, size_t msglen)
{
	PCRE2_UCHAR text[256];
	PCRE2_SIZE off = 0;
	pcre2_code *re;
	int code = 0;

	re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
			   PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code, &off, NULL);
	if (!re) {
		if (pcre2_get_error_message(code, text, sizeof(text)) < 0)
			snprintf((char *)text, sizeof(text), "error %d", code);
		snprintf(msg, msglen, "%s at offset %zu", (const char *)text, (size_t)off);
		return NULL;
	}
	/* Without JIT (an architecture PCRE2 has no JIT for, or no executable
	 * memory) pcre2_match interprets: slower, same results. */
	(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	return re;
}
