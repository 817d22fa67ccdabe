/*
 * file.h — the one whole-file reader of the library.
 */
#ifndef ES_FILE_H
#define ES_FILE_H

#include "emosteer.h"

#include <stddef.h>

/* es_file_read is declared in emosteer.h (the Files section). */

#endif /* ES_FILE_H */
