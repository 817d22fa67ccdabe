/*
 * utf8.h — the one UTF-8 validator of the library, and the repair every text output
 * goes through (generated text, files, reports): invalid bytes become U+FFFD.
 */
#ifndef ES_UTF8_H
#define ES_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length (1-4) of the valid UTF-8 character at s[0..n), or 0 if s does not start with
 * one (a stray continuation byte, an overlong form, a surrogate, > U+10FFFF, or a
 * character cut short by n). */
size_t es_utf8_valid_len(const unsigned char *s, size_t n);

/* The valid UTF-8 character at s[0..n): its length (1-4), with its code point in *cp;
 * 0 when es_utf8_valid_len is 0 (*cp untouched). */
size_t es_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Writes the UTF-8 bytes of code point cp (< 0x110000) to out (room for 4); returns
 * their count. */
size_t es_utf8_encode(uint32_t cp, char *out);

/* Writes s[0..n) to out with every byte that does not begin a valid character replaced
 * by U+FFFD (EF BF BD); out must hold 3 * n bytes. Returns the bytes written. */
size_t es_utf8_repair(const char *s, size_t n, char *out);

/* A malloc'ed, NUL-terminated copy of the C string s repaired as es_utf8_repair does.
 * NULL on allocation failure (message set); s == NULL gives "". */
char *es_utf8_sanitize(const char *s);

#endif /* ES_UTF8_H */
