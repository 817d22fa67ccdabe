/*
 * file.h — the one whole-file reader of the library.
 */
#ifndef ES_FILE_H
#define ES_FILE_H

#include "emosteer.h"

#include <stddef.h>

/* Reads the whole regular file at `path` (at most max_bytes bytes) into a new 64-byte
 * aligned buffer with a NUL after the last byte (so text can be used as a C string;
 * *len does not count it). *data is owned by the caller (free()). Fails, with a
 * message naming `path`, on a file that cannot be opened (ES_ERR_IO), one that is not
 * a regular file — a directory, a FIFO, a device — (ES_ERR_IO, checked before any read,
 * so a FIFO never blocks), one larger than max_bytes (ES_ERR_FORMAT), a read error
 * (ES_ERR_IO) or out of memory. On failure *data and *len are untouched. */
es_status es_file_read(const char *path, size_t max_bytes, char **data, size_t *len);

#endif /* ES_FILE_H */
