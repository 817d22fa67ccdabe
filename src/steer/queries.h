/* queries.h — query sets: the API and the file formats are public (emosteer.h,
 * "Query sets"). */
#ifndef ES_QUERIES_H
#define ES_QUERIES_H

#include "emosteer.h"

#include <stddef.h>

#endif /* ES_QUERIES_H */
