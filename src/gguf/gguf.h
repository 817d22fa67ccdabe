/*
 * gguf.h — GGUF reading and writing: the API is public (emosteer.h, "GGUF files");
 * this header is kept so that internal code keeps one include for it.
 */
#ifndef ES_GGUF_H
#define ES_GGUF_H

#include "common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#endif /* ES_GGUF_H */
