// expertbridge.h compiles as C++17 (extern "C", no C-only constructs) with the same layout as in C.
#include <cstddef>
#include <type_traits>

#include "expertbridge.h"

static_assert(sizeof(eb_status) == 4, "eb_status is 32-bit");
static_assert(sizeof(eb_info) == 32, "eb_info v1 layout");
static_assert(sizeof(eb_tensor_desc) == 40, "eb_tensor_desc v1 layout");
static_assert(sizeof(eb_mapping) == 72, "eb_mapping v1 layout");
static_assert(sizeof(eb_stats) == 112, "eb_stats v1 layout");
static_assert(std::is_standard_layout_v<eb_mapping> && std::is_trivially_copyable_v<eb_mapping>, "C layout");
static_assert(std::is_pointer_v<eb_bridge>, "opaque handle");
static_assert(std::is_same_v<decltype(&eb_record_step), eb_status (*)(eb_bridge, int64_t, const int32_t*, uint64_t)>,
              "eb_record_step signature");
static_assert(std::is_same_v<decltype(&eb_version), uint32_t (*)()>, "eb_version signature");

int eb_cxx17_header_compiles() { return EB_STATUS_OK; }
