# run.cmake - one consumer test: cmake -DMODE=<mode> <settings> -P run.cmake
#
# The settings come from test/consumer/CMakeLists.txt (see there for the
# modes). Every command is printed before it runs, with this build's
# consumer folder shown as <work> and weave's source tree as <weave>; what
# the programs print is shown too. Any failure prints the command's output
# and fails the test.
cmake_minimum_required(VERSION 3.21)

set(here ${WORK}/${MODE})

function(say)
    string(REPLACE ";" " " text "${ARGN}")
    string(REPLACE "${WORK}" "<work>" text "${text}")
    string(REPLACE "${WEAVE_SOURCE_DIR}" "<weave>" text "${text}")
    message("consumer_${MODE}: ${text}")
endfunction()

function(fail)
    string(REPLACE ";" " " text "${ARGN}")
    message(FATAL_ERROR "consumer_${MODE}: ${text}")
endfunction()

# step(<command>...): runs it; leaves its output in step_output.
function(step)
    list(JOIN ARGN " " shown)
    say("$ ${shown}")
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    if(NOT rc EQUAL 0)
        message("${out}")
        fail("failed (${rc}): ${shown}")
    endif()
    set(step_output "${out}" PARENT_SCOPE)
endfunction()

# run_app(<program> [<env>...]): runs a built program (with <env> set, e.g.
# LD_LIBRARY_PATH=...) and shows what it printed.
function(run_app program)
    set(env "")
    if(ARGN)
        set(env ${CMAKE_COMMAND} -E env ${ARGN})
    endif()
    step(${env} ${program})
    string(STRIP "${step_output}" printed)
    string(REPLACE "\n" ";" printed "${printed}")
    foreach(line IN LISTS printed)
        say("  ${line}")
    endforeach()
endfunction()

# needs(<program> <yes|no>): whether the program loads libweave.so, from its
# dynamic section, so that a "static" program cannot pass by loading the
# shared library after all.
function(needs program want)
    if(NOT READELF)
        say("(no readelf: not checking how ${program} links weave)")
        return()
    endif()
    execute_process(COMMAND ${READELF} -d ${program} OUTPUT_VARIABLE dyn ERROR_QUIET)
    string(REGEX MATCH "NEEDED[^\n]*libweave[^\n]*" needed "${dyn}")
    get_filename_component(name ${program} NAME)
    if(want AND NOT needed)
        fail("${name} does not load libweave.so")
    elseif(NOT want AND needed)
        fail("${name} should hold weave itself but needs it: ${needed}")
    endif()
    if(needed)
        string(REGEX REPLACE ".*\\[(.*)\\].*" "\\1" lib "${needed}")
        say("  ${name} loads ${lib}")
    elseif(dyn MATCHES "NEEDED")
        say("  ${name} holds weave itself (no libweave in its NEEDED entries)")
    else()
        say("  ${name} is linked statically throughout (no dynamic section)")
    endif()
endfunction()

# The CMake options every consumer project gets: this build's generator,
# compiler, sanitizer flags and task switch.
set(project_args -G ${GENERATOR} -DCMAKE_C_COMPILER=${CC} -DWEAVE_CONTEXT=${CONTEXT}
    "-DCMAKE_C_FLAGS=${FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${FLAGS}"
    "-DCMAKE_SHARED_LINKER_FLAGS=${FLAGS}" -Wno-dev)

file(REMOVE_RECURSE ${here})
file(MAKE_DIRECTORY ${here})

if(MODE STREQUAL "install")
    file(REMOVE_RECURSE ${PREFIX})
    step(${CMAKE} --install ${WEAVE_BUILD_DIR} --prefix ${PREFIX} --config ${CONFIG})
    file(GLOB_RECURSE files LIST_DIRECTORIES false RELATIVE ${PREFIX} ${PREFIX}/*)
    list(SORT files)
    say("installed into <work>/prefix:")
    foreach(f IN LISTS files)
        say("  ${f}")
    endforeach()

    set(want ${INCLUDEDIR}/weave.h ${LIBDIR}/pkgconfig/weave.pc
        ${LIBDIR}/cmake/weave/weaveConfig.cmake ${LIBDIR}/cmake/weave/weaveConfigVersion.cmake
        ${LIBDIR}/cmake/weave/weaveTargets.cmake ${DOCDIR}/LICENSE)
    if(SHARED)
        list(APPEND want ${LIBDIR}/libweave.so ${LIBDIR}/libweave.so.${SOVERSION}
            ${LIBDIR}/libweave.so.${VERSION})
    endif()
    if(STATIC)
        list(APPEND want ${LIBDIR}/libweave.a)
    endif()
    foreach(f IN LISTS want)
        if(NOT f IN_LIST files)
            fail("${f} was not installed")
        endif()
    endforeach()

    if(SHARED AND READELF)
        execute_process(COMMAND ${READELF} -d ${PREFIX}/${LIBDIR}/libweave.so OUTPUT_VARIABLE dyn)
        string(REGEX MATCH "SONAME[^\n]*\\[(libweave[^\n]*)\\]" soname "${dyn}")
        if(NOT CMAKE_MATCH_1 STREQUAL "libweave.so.${SOVERSION}")
            fail("libweave.so's soname is '${CMAKE_MATCH_1}', not libweave.so.${SOVERSION}")
        endif()
        say("libweave.so's soname: ${CMAKE_MATCH_1}")
    endif()

    # The shared library exports the public API alone: no internal weave__
    # function, and every public one, weave_version among them.
    if(SHARED AND NM)
        execute_process(COMMAND ${NM} -D --defined-only ${PREFIX}/${LIBDIR}/libweave.so
            OUTPUT_VARIABLE symbols)
        string(REGEX MATCHALL " [TDBRW] weave_[a-z0-9_]*" public "${symbols}")
        list(LENGTH public count)
        if(symbols MATCHES " [TDBRW] (weave__[A-Za-z0-9_]*)")
            fail("libweave.so exports the internal ${CMAKE_MATCH_1}")
        endif()
        if(NOT symbols MATCHES " T weave_version\n")
            fail("libweave.so does not export weave_version")
        endif()
        say("libweave.so exports ${count} weave_ symbols and no weave__ one")
    endif()

    # The exported targets: each include directory once, and no generator
    # expression that is left empty (as a build-only dependency leaves
    # behind in a static library's link interface).
    file(GLOB exported ${PREFIX}/${LIBDIR}/cmake/weave/weaveTargets*.cmake)
    foreach(file IN LISTS exported)
        file(READ ${file} text)
        if(text MATCHES "\\$<[A-Za-z_]*:>" OR text MATCHES "\\$<>")
            fail("an empty generator expression in ${file}: ${CMAKE_MATCH_0}")
        endif()
        string(REGEX MATCHALL "INTERFACE_INCLUDE_DIRECTORIES \"[^\"]*\"" dirs "${text}")
        foreach(entry IN LISTS dirs)
            string(REGEX REPLACE "^INTERFACE_INCLUDE_DIRECTORIES \"(.*)\"$" "\\1" list "${entry}")
            set(unique ${list})
            list(REMOVE_DUPLICATES unique)
            if(NOT list STREQUAL unique)
                fail("an include directory repeated in ${file}: ${list}")
            endif()
        endforeach()
    endforeach()
    file(STRINGS ${PREFIX}/${LIBDIR}/cmake/weave/weaveTargets.cmake lines
        REGEX "^add_library|^ *INTERFACE_")
    say("weaveTargets.cmake declares:")
    foreach(line IN LISTS lines)
        string(STRIP "${line}" line)
        say("  ${line}")
    endforeach()

elseif(MODE STREQUAL "package")
    set(components "")
    if(SHARED)
        list(APPEND components shared)
    endif()
    if(STATIC)
        list(APPEND components static)
    endif()
    list(JOIN components " " components)
    step(${CMAKE} -S ${SOURCE}/package -B ${here} ${project_args} -DCMAKE_BUILD_TYPE=${CONFIG}
         -DCMAKE_PREFIX_PATH=${PREFIX} -DWEAVE_EXPECT_VERSION=${VERSION}
         "-DWEAVE_EXPECT_COMPONENTS=${components}")
    string(REGEX MATCHALL "-- (found weave|weave::)[^\n]*" found "${step_output}")
    foreach(line IN LISTS found)
        say("  ${line}")
    endforeach()
    step(${CMAKE} --build ${here} --config ${CONFIG})
    run_app(${here}/bin/app_weave)
    needs(${here}/bin/app_weave ${SHARED})
    if(STATIC)
        run_app(${here}/bin/app_static)
        needs(${here}/bin/app_static NO)
    endif()

elseif(MODE STREQUAL "pkgconfig")
    set(pc ${CMAKE} -E env PKG_CONFIG_PATH=${PREFIX}/${LIBDIR}/pkgconfig ${PKG_CONFIG})
    separate_arguments(flags UNIX_COMMAND "${FLAGS}")

    step(${pc} --modversion weave)
    string(STRIP "${step_output}" pc_version)
    say("  weave.pc says Version: ${pc_version}")
    if(NOT pc_version STREQUAL VERSION)
        fail("weave.pc's version is ${pc_version}, the header's ${VERSION}")
    endif()

    step(${pc} --cflags --libs weave)
    string(STRIP "${step_output}" out)
    say("  ${out}")
    separate_arguments(cflags_libs UNIX_COMMAND "${out}")
    step(${CC} ${SOURCE}/app.c ${cflags_libs} ${flags} -o ${here}/app_pc)
    run_app(${here}/app_pc LD_LIBRARY_PATH=${PREFIX}/${LIBDIR})
    needs(${here}/app_pc ${SHARED})

    step(${pc} --static --cflags --libs weave)
    string(STRIP "${step_output}" out)
    say("  ${out}")
    separate_arguments(static_libs UNIX_COMMAND "${out}")
    if(FLAGS STREQUAL "")
        # What --static is for: a program linked statically throughout.
        step(${CC} -static ${SOURCE}/app.c ${static_libs} ${flags} -o ${here}/app_pc_static)
    else()
        # The sanitizers' runtimes cannot be linked statically: the archive
        # alone is, with what Libs.private names.
        step(${pc} --cflags weave)
        separate_arguments(cflags UNIX_COMMAND "${step_output}")
        step(${pc} --static --libs-only-L --libs-only-l weave)
        separate_arguments(libs UNIX_COMMAND "${step_output}")
        step(${pc} --static --libs-only-other weave)
        separate_arguments(other UNIX_COMMAND "${step_output}")
        step(${CC} ${SOURCE}/app.c ${cflags} -Wl,-Bstatic ${libs} -Wl,-Bdynamic ${other} ${flags}
             -o ${here}/app_pc_static)
    endif()
    run_app(${here}/app_pc_static)
    needs(${here}/app_pc_static NO)

elseif(MODE STREQUAL "subproject" OR MODE STREQUAL "fetchcontent")
    # The host sets no build type and, for FetchContent, asks for shared
    # libraries: the guest must follow and build that kind alone.
    if(MODE STREQUAL "subproject")
        set(project ${SOURCE}/subproject)
        set(host_args "")
        set(shared_app NO)
        set(built libweave.a)
        set(not_built libweave.so)
    else()
        set(project ${SOURCE}/fetch)
        set(host_args -DBUILD_SHARED_LIBS=ON)
        set(shared_app YES)
        set(built libweave.so)
        set(not_built libweave.a)
    endif()
    step(${CMAKE} -S ${project} -B ${here}/build ${project_args} ${host_args}
         -DWEAVE_SOURCE_DIR=${WEAVE_SOURCE_DIR})
    string(REGEX MATCHALL "-- guest:[^\n]*" guest "${step_output}")
    foreach(line IN LISTS guest)
        say("  ${line}")
    endforeach()
    step(${CMAKE} --build ${here}/build --config ${CONFIG} --parallel 2)

    file(GLOB_RECURSE libs LIST_DIRECTORIES false RELATIVE ${here}/build
        ${here}/build/*libweave.a ${here}/build/*libweave.so*)
    list(JOIN libs ", " shown)
    say("  weave libraries built: ${shown}")
    if(NOT libs MATCHES "(^|/)${built}(;|$)")
        fail("${built} was not built")
    endif()
    if(libs MATCHES "(^|/)${not_built}")
        fail("${not_built} was built too")
    endif()
    run_app(${here}/build/bin/app)
    needs(${here}/build/bin/app ${shared_app})

    # The host's install holds the host's program and nothing of weave.
    step(${CMAKE} --install ${here}/build --prefix ${here}/root --config ${CONFIG})
    file(GLOB_RECURSE installed LIST_DIRECTORIES false RELATIVE ${here}/root ${here}/root/*)
    list(JOIN installed ", " shown)
    say("  the host installed: ${shown}")
    if(NOT installed STREQUAL "bin/app")
        fail("the host's install holds more than its program: ${installed}")
    endif()

elseif(MODE STREQUAL "nocheck")
    # Check is found through pkg-config: a pkg-config that searches an
    # empty folder finds no Check, as on a machine without it.
    set(no_check ${CMAKE} -E env PKG_CONFIG_LIBDIR=${here}/empty --unset=PKG_CONFIG_PATH)
    file(MAKE_DIRECTORY ${here}/empty)
    set(weave_args -S ${WEAVE_SOURCE_DIR} -B ${here}/build ${project_args}
        -DCMAKE_BUILD_TYPE=${CONFIG} -DWEAVE_BUILD_TESTS=ON -DWEAVE_BUILD_DEMOS=OFF
        -DWEAVE_BUILD_BENCH=OFF -DWEAVE_VALGRIND_TESTS=OFF)
    step(${no_check} ${CMAKE} ${weave_args})
    string(REGEX MATCH "weave's test suites need.*builds as usual\\." warning "${step_output}")
    if(NOT warning MATCHES "The suites are skipped")
        message("${step_output}")
        fail("no message said the suites are skipped")
    endif()
    string(REGEX REPLACE "[ \n]+" " " warning "${warning}")
    say("  configured, with the warning: ${warning}")
    step(${CMAKE} --build ${here}/build --config ${CONFIG} --parallel 2)
    file(GLOB_RECURSE libs LIST_DIRECTORIES false RELATIVE ${here}/build
        ${here}/build/libweave.a ${here}/build/libweave.so*)
    file(GLOB_RECURSE suites LIST_DIRECTORIES false ${here}/build/test/test_*)
    if(NOT libs OR suites)
        fail("without Check the build made libraries '${libs}' and suites '${suites}'")
    endif()
    list(JOIN libs ", " shown)
    say("  built ${shown}, and no suite")

    list(JOIN weave_args " " shown)
    say("$ ${no_check} ${CMAKE} ${shown} -DWEAVE_REQUIRE_TESTS=ON")
    execute_process(COMMAND ${no_check} ${CMAKE} ${weave_args} -DWEAVE_REQUIRE_TESTS=ON
        RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    string(REGEX REPLACE "[ \n]+" " " out_flat "${out}")
    if(rc EQUAL 0 OR NOT out_flat MATCHES "WEAVE_REQUIRE_TESTS is ON, so this is an error")
        message("${out}")
        fail("with WEAVE_REQUIRE_TESTS the configure did not fail as it should")
    endif()
    say("  failed as it should, saying: WEAVE_REQUIRE_TESTS is ON, so this is an error.")

else()
    fail("unknown MODE '${MODE}'")
endif()
say("ok")
