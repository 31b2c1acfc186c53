/* expertbridge.h compiles as strict C11 and its ABI types have the documented sizes. */
#include <stddef.h>

#include "expertbridge.h"

_Static_assert(sizeof(eb_status) == 4, "eb_status is 32-bit");
_Static_assert(sizeof(eb_rebalance_result) == 4, "eb_rebalance_result is 32-bit");
_Static_assert(sizeof(eb_info) == 32, "eb_info v1 layout");
_Static_assert(sizeof(eb_tensor_desc) == 40, "eb_tensor_desc v1 layout");
_Static_assert(offsetof(eb_tensor_desc, data) == 24, "eb_tensor_desc.data offset");
_Static_assert(sizeof(eb_mapping) == 72, "eb_mapping v1 layout");
_Static_assert(offsetof(eb_mapping, epoch) == 56, "eb_mapping.epoch offset");
_Static_assert(sizeof(eb_stats) == 112, "eb_stats v1 layout");
_Static_assert(offsetof(eb_stats, balancedness) == 88, "eb_stats.balancedness offset");
_Static_assert(EB_VERSION_GET_MAJOR(EB_VERSION) == EB_VERSION_MAJOR, "version packing");
_Static_assert(EB_VERSION_GET_MINOR(EB_VERSION) == EB_VERSION_MINOR, "version packing");

/* Every function is declared with the documented signature. */
eb_status (*const eb_c11_check_create)(const char*, eb_bridge*) = eb_create;
eb_status (*const eb_c11_check_record)(eb_bridge, int64_t, const int32_t*, uint64_t) = eb_record_step;
eb_status (*const eb_c11_check_boundary)(eb_bridge, int32_t*, uint32_t, uint32_t*, int64_t*) = eb_step_boundary;
eb_status (*const eb_c11_check_mapping)(eb_bridge, eb_mapping*) = eb_get_mapping;
const char* (*const eb_c11_check_error)(void) = eb_last_error;
