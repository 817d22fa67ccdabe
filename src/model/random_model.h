/* random_model.h — random models at real shapes: the API is public (emosteer.h,
 * "Random models"). */
#ifndef ES_RANDOM_MODEL_H
#define ES_RANDOM_MODEL_H

#include "common.h"

#include <stdint.h>

#endif /* ES_RANDOM_MODEL_H */
