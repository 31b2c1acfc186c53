# include() this to get the target `expertbridge` (libexpertbridge.so) and EB_INCLUDE_DIR.
# Uses the library already built into EB_OUTPUT_DIR (build.ps1 builds the shim first), else builds the shim here.
set(EB_INCLUDE_DIR "${CMAKE_CURRENT_LIST_DIR}/../include")
get_filename_component(EB_INCLUDE_DIR "${EB_INCLUDE_DIR}" ABSOLUTE)
option(EB_REBUILD_SHIM "Build the shim even when EB_OUTPUT_DIR already holds it" OFF)
if(NOT TARGET expertbridge)
  if(NOT EB_REBUILD_SHIM AND EXISTS "${EB_OUTPUT_DIR}/libexpertbridge.so" AND EXISTS "${EB_OUTPUT_DIR}/managed/ExpertBridge.Native.dll")
    add_library(expertbridge SHARED IMPORTED)
    set_target_properties(expertbridge PROPERTIES
      IMPORTED_LOCATION "${EB_OUTPUT_DIR}/libexpertbridge.so"
      INTERFACE_INCLUDE_DIRECTORIES "${EB_INCLUDE_DIR}")
    message(STATUS "expertbridge: using ${EB_OUTPUT_DIR}/libexpertbridge.so")
  else()
    add_subdirectory("${CMAKE_CURRENT_LIST_DIR}" "${CMAKE_BINARY_DIR}/expertbridge-shim")
  endif()
endif()
