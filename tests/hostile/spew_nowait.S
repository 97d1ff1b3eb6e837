/* spew.S without waiting for THRE: see there. */
#define SPEW_NOWAIT
#include "spew.S"
