/*
 * utf8.h — the one UTF-8 validator of the library, and the repair every text output
 * goes through (generated text, files, reports): invalid bytes become U+FFFD.
 */
#ifndef ES_UTF8_H
#define ES_UTF8_H

#include <stddef.h>

/* Length (1-4) of the valid UTF-8 character at s[0..n), or 0 if s does not start with
 * one (a stray continuation byte, an overlong form, a surrogate, > U+10FFFF, or a
 * character cut short by n). */
size_t es_utf8_valid_len(const unsigned char *s, size_t n);

/* Writes s[0..n) to out with every byte that does not begin a valid character replaced
 * by U+FFFD (EF BF BD); out must hold 3 * n bytes. Returns the bytes written. */
size_t es_utf8_repair(const char *s, size_t n, char *out);

/* A malloc'ed, NUL-terminated copy of the C string s repaired as es_utf8_repair does.
 * NULL on allocation failure (message set); s == NULL gives "". */
char *es_utf8_sanitize(const char *s);

#endif /* ES_UTF8_H */
