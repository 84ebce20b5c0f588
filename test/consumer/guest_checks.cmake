# guest_checks.cmake - what a project that builds weave inside itself
# (add_subdirectory, FetchContent) may rely on. Included by the subproject
# and fetch consumers right after weave is added; host_build_type is the
# host's CMAKE_BUILD_TYPE cache entry from before.

# Nothing of weave's own: no suites, demos or benches.
foreach(target test_sched test_version gdb_target factorial pipeline sleep_bench
               weave_bench_util)
    if(TARGET ${target})
        message(FATAL_ERROR "a guest weave defined ${target}")
    endif()
endforeach()

# The host's build type is left as it was.
if(NOT "$CACHE{CMAKE_BUILD_TYPE}" STREQUAL "${host_build_type}")
    message(FATAL_ERROR "a guest weave changed CMAKE_BUILD_TYPE from '${host_build_type}' "
                        "to '$CACHE{CMAKE_BUILD_TYPE}'")
endif()

# weave::weave is the kind the host's BUILD_SHARED_LIBS asks for.
get_target_property(real weave::weave ALIASED_TARGET)
get_target_property(type ${real} TYPE)
if(BUILD_SHARED_LIBS)
    set(want SHARED_LIBRARY)
else()
    set(want STATIC_LIBRARY)
endif()
if(NOT type STREQUAL want)
    message(FATAL_ERROR "BUILD_SHARED_LIBS is '${BUILD_SHARED_LIBS}' but weave::weave is a ${type}")
endif()
message(STATUS "guest: weave::weave is ${real}, a ${type} (BUILD_SHARED_LIBS '${BUILD_SHARED_LIBS}'), "
               "no suites, demos or benches, build type left '${host_build_type}'")
