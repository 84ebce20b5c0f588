# tutorial_test.cmake - run what the tutorial (demo/README.md) quotes and
# check that it still prints what the tutorial says it prints.
#
#   cmake -DTUTORIAL=<demo/README.md> -DSOURCE_DIR=<source tree>
#         -DBINARY_DIR=<build tree> [-DBUILD=ON] [-DCONFIG=<config>]
#         -P tutorial_test.cmake
#
# The tutorial follows two conventions, and this script checks both:
#
#   - A ```sh block whose first line is "$ <command>" is a run: the command
#     (a program of the build tree and its arguments, no shell) runs from
#     the build directory, and the block's other lines are its output, in
#     order. A line "..." stands for any number of lines. The program must
#     exit with 0, and print nothing more than the block shows (stdout and
#     stderr together, as a terminal shows them; AddressSanitizer's notice
#     that it sees swapcontext aside). Blank lines are not
#     compared, and neither are what changes from run to run: every number
#     is masked, spaces are dropped, and a run of '#' or '-' (a bar of a
#     timeline chart) counts as one character.
#   - A ```c block begins with the line "/* <file> */", the source file it
#     quotes; its other lines must appear in that file, in order, one after
#     the other, except where a line "..." or "/* ... */" stands for lines
#     left out. The file must be a program the build makes: <dir>/<name>.c
#     is built as <dir>/<name>.
#
# Other blocks (build instructions, say) are not checked. With BUILD=ON the
# quoted programs are built first (the test runs alone, so nothing else
# runs from the build tree meanwhile). A failure names the step (the "## "
# heading above the block) and the line of the tutorial it comes from; every
# block is checked, and the test fails at the end if any failed.

cmake_minimum_required(VERSION 3.21)

foreach(var TUTORIAL SOURCE_DIR BINARY_DIR)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "tutorial_test.cmake: -D${var}=... is required")
    endif()
endforeach()
foreach(var TUTORIAL SOURCE_DIR BINARY_DIR)
    get_filename_component(${var} "${${var}}" ABSOLUTE)
endforeach()
if(NOT EXISTS "${TUTORIAL}")
    message(FATAL_ERROR "tutorial_test.cmake: no tutorial at ${TUTORIAL}")
endif()
file(RELATIVE_PATH tutorial_name "${SOURCE_DIR}" "${TUTORIAL}")

# CMake lists are strings split at ';', and '[', ']' and '\' change where
# they split, so text is kept encoded, one character standing for each of
# those four, while it is held in a list, and decoded when a line is used.
string(ASCII 1 enc_semi)
string(ASCII 2 enc_lbr)
string(ASCII 3 enc_rbr)
string(ASCII 4 enc_bsl)

# Split text into a list of encoded lines (out), blank lines included.
function(tutorial_split_lines out text)
    string(REPLACE "\\" "${enc_bsl}" text "${text}")
    string(REPLACE ";" "${enc_semi}" text "${text}")
    string(REPLACE "[" "${enc_lbr}" text "${text}")
    string(REPLACE "]" "${enc_rbr}" text "${text}")
    string(REPLACE "\r" "" text "${text}")
    string(REPLACE "\n" ";" text "${text}")
    set(${out} "${text}" PARENT_SCOPE)
endfunction()

function(tutorial_decode out line)
    string(REPLACE "${enc_bsl}" "\\" line "${line}")
    string(REPLACE "${enc_semi}" ";" line "${line}")
    string(REPLACE "${enc_lbr}" "[" line "${line}")
    string(REPLACE "${enc_rbr}" "]" line "${line}")
    set(${out} "${line}" PARENT_SCOPE)
endfunction()

# An output line as it is compared: numbers masked, spaces dropped, bars of
# '#' and '-' shortened to one character.
function(tutorial_mask out line)
    string(REGEX REPLACE "[-+]?[0-9]+(\\.[0-9]+)?" "N" line "${line}")
    string(REGEX REPLACE "[ \t]+" "" line "${line}")
    string(REGEX REPLACE "#+" "#" line "${line}")
    string(REGEX REPLACE "-+" "-" line "${line}")
    set(${out} "${line}" PARENT_SCOPE)
endfunction()

# Is a quoted line the mark of lines left out?
function(tutorial_is_elision out line)
    string(STRIP "${line}" line)
    if(line STREQUAL "..." OR line STREQUAL "/* ... */")
        set(${out} TRUE PARENT_SCOPE)
    else()
        set(${out} FALSE PARENT_SCOPE)
    endif()
endfunction()

# Drop the blank lines of a list of encoded lines.
function(tutorial_drop_blank out lines)
    set(kept)
    foreach(line IN LISTS lines)
        if(NOT line MATCHES "^[ \t]*$")
            list(APPEND kept "${line}")
        endif()
    endforeach()
    set(${out} "${kept}" PARENT_SCOPE)
endfunction()

# The lines of a list (encoded) as they are compared: trailing spaces
# dropped and, with MASK, masked. Masking works on encoded lines as well as
# on decoded ones: the stand-in characters are no digits, spaces, # or -.
function(tutorial_comparable out lines)
    cmake_parse_arguments(ARG "MASK" "" "" ${ARGN})
    set(result)
    foreach(line IN LISTS lines)
        string(REGEX REPLACE "[ \t]+$" "" line "${line}")
        if(ARG_MASK)
            tutorial_mask(line "${line}")
        endif()
        list(APPEND result "${line}")
    endforeach()
    set(${out} "${result}" PARENT_SCOPE)
endfunction()

# Match quoted lines against actual ones (both encoded, blank lines
# dropped). The quote is cut into runs of lines at its elisions; each run
# must appear, consecutive, after the one before. MASK compares masked
# lines. WHOLE makes the quote cover the actual lines from the first to the
# last, except where it begins or ends with an elision; without it the
# quote may be anywhere. Sets out to "" on a match, else to a description
# of what does not match.
function(tutorial_match out quoted actual)
    cmake_parse_arguments(ARG "MASK;WHOLE" "" "" ${ARGN})
    set(mask)
    if(ARG_MASK)
        set(mask MASK)
    endif()
    tutorial_comparable(qcmp "${quoted}" ${mask})
    tutorial_comparable(acmp "${actual}" ${mask})
    list(LENGTH quoted nq)
    list(LENGTH actual na)
    set(pos 0)        # actual lines before pos are used up
    set(anchored ${ARG_WHOLE})
    set(qi 0)
    set(elided FALSE) # did the quote end with an elision?
    while(qi LESS nq)
        list(GET quoted ${qi} q)
        tutorial_decode(q "${q}")
        tutorial_is_elision(elision "${q}")
        if(elision)
            set(anchored FALSE)
            set(elided TRUE)
            math(EXPR qi "${qi} + 1")
            continue()
        endif()
        set(elided FALSE)
        # The run: quoted lines qi .. se-1.
        set(se ${qi})
        while(se LESS nq)
            list(GET quoted ${se} q)
            tutorial_decode(q "${q}")
            tutorial_is_elision(elision "${q}")
            if(elision)
                break()
            endif()
            math(EXPR se "${se} + 1")
        endwhile()
        math(EXPR runlen "${se} - ${qi}")
        math(EXPR last_start "${na} - ${runlen}")
        if(anchored)
            set(first_start ${pos})
            set(last_start ${pos})
        elseif(ARG_WHOLE AND se EQUAL nq)
            set(first_start ${last_start}) # the last run ends where the output does
        else()
            set(first_start ${pos})
        endif()
        # Try each start; keep the one that matched longest for the report.
        set(best -1)
        set(best_start ${first_start})
        set(matched FALSE)
        set(start ${first_start})
        while(start LESS_EQUAL last_start AND start GREATER_EQUAL pos)
            set(k 0)
            while(k LESS runlen)
                math(EXPR qk "${qi} + ${k}")
                math(EXPR ak "${start} + ${k}")
                list(GET qcmp ${qk} ql)
                list(GET acmp ${ak} al)
                if(NOT ql STREQUAL al)
                    break()
                endif()
                math(EXPR k "${k} + 1")
            endwhile()
            if(k EQUAL runlen)
                set(matched TRUE)
                break()
            endif()
            if(k GREATER best)
                set(best ${k})
                set(best_start ${start})
            endif()
            math(EXPR start "${start} + 1")
        endwhile()
        if(NOT matched)
            if(best LESS 0)
                set(best 0)
            endif()
            math(EXPR qk "${qi} + ${best}")
            math(EXPR ak "${best_start} + ${best}")
            math(EXPR qno "${qk} + 1")
            list(GET quoted ${qk} ql)
            tutorial_decode(ql "${ql}")
            if(ak LESS na AND (anchored OR best GREATER 0))
                list(GET actual ${ak} al)
                tutorial_decode(al "${al}")
                set(${out} "quoted line ${qno} is not the one in its place:\n    quoted:  ${ql}\n    found:   ${al}" PARENT_SCOPE)
            else()
                set(${out} "quoted line ${qno} does not appear where the quote has it:\n    quoted:  ${ql}" PARENT_SCOPE)
            endif()
            return()
        endif()
        math(EXPR pos "${start} + ${runlen}")
        set(qi ${se})
        set(anchored TRUE)
    endwhile()
    if(ARG_WHOLE AND NOT elided AND pos LESS na)
        list(GET actual ${pos} al)
        tutorial_decode(al "${al}")
        set(${out} "there is more than the quote shows (a line \"...\" leaves lines out):\n    next line: ${al}" PARENT_SCOPE)
        return()
    endif()
    set(${out} "" PARENT_SCOPE)
endfunction()

# ---- read the tutorial into blocks -------------------------------------------

file(READ "${TUTORIAL}" text)
tutorial_split_lines(lines "${text}")

set(nblocks 0)
set(step "(before the first step)")
set(lineno 0)
set(in_fence FALSE)
foreach(line IN LISTS lines)
    math(EXPR lineno "${lineno} + 1")
    tutorial_decode(decoded "${line}")
    if(NOT in_fence)
        if(decoded MATCHES "^## +(.*)$")
            set(step "${CMAKE_MATCH_1}")
        elseif(decoded MATCHES "^```(.*)$")
            string(STRIP "${CMAKE_MATCH_1}" info)
            set(in_fence TRUE)
            set(body)
            set(fence_line ${lineno})
        endif()
    elseif(decoded MATCHES "^```[ \t]*$")
        set(in_fence FALSE)
        set(kind "")
        list(LENGTH body nbody)
        if(nbody GREATER 0)
            list(GET body 0 first)
            tutorial_decode(first "${first}")
        else()
            set(first "")
        endif()
        if(info STREQUAL "sh" AND first MATCHES "^\\$ +(.+)$")
            set(kind run)
            set(what "${CMAKE_MATCH_1}")
        elseif(info STREQUAL "c")
            set(kind source)
            if(first MATCHES "^/\\* +([^ ]+) +\\*/$")
                set(what "${CMAKE_MATCH_1}")
            else()
                set(what "")
            endif()
        endif()
        if(kind)
            math(EXPR nblocks "${nblocks} + 1")
            set(block_${nblocks}_kind ${kind})
            set(block_${nblocks}_what "${what}")
            set(block_${nblocks}_step "${step}")
            set(block_${nblocks}_line ${fence_line})
            if(nbody GREATER 1)
                list(SUBLIST body 1 -1 rest)
            else()
                set(rest)
            endif()
            tutorial_drop_blank(rest "${rest}")
            set(block_${nblocks}_body "${rest}")
        endif()
    else()
        list(APPEND body "${line}")
    endif()
endforeach()
if(in_fence)
    message(FATAL_ERROR "${tutorial_name}:${fence_line}: a code block is never closed")
endif()
if(nblocks EQUAL 0)
    message(FATAL_ERROR "${tutorial_name}: no block to check (see tutorial_test.cmake)")
endif()

# The program a block is about: a run's command, or what a source builds.
set(programs)
foreach(i RANGE 1 ${nblocks})
    set(prog "")
    if(block_${i}_kind STREQUAL "run")
        separate_arguments(args UNIX_COMMAND "${block_${i}_what}")
        list(GET args 0 prog)
    elseif(block_${i}_what MATCHES "^(.+)\\.c$")
        set(prog "${CMAKE_MATCH_1}")
    endif()
    set(block_${i}_program "${prog}")
    if(prog)
        list(APPEND programs "${prog}")
    endif()
endforeach()
list(REMOVE_DUPLICATES programs)

# ---- build the quoted programs ------------------------------------------------

# A target is named after its program; one that fails to build (or that
# no target makes) is reported with every step that quotes it.
set(unbuilt)
if(BUILD)
    set(config_args)
    if(CONFIG)
        set(config_args --config "${CONFIG}")
    endif()
    set(targets)
    foreach(prog IN LISTS programs)
        get_filename_component(target "${prog}" NAME)
        list(APPEND targets "${target}")
    endforeach()
    execute_process(COMMAND "${CMAKE_COMMAND}" --build "${BINARY_DIR}" ${config_args}
                            --target ${targets}
                    RESULT_VARIABLE rc OUTPUT_VARIABLE build_out ERROR_VARIABLE build_out)
    if(NOT rc EQUAL 0)
        # Find which: build them one at a time.
        foreach(prog IN LISTS programs)
            get_filename_component(target "${prog}" NAME)
            execute_process(COMMAND "${CMAKE_COMMAND}" --build "${BINARY_DIR}" ${config_args}
                                    --target ${target}
                            RESULT_VARIABLE rc OUTPUT_VARIABLE one_out ERROR_VARIABLE one_out)
            if(NOT rc EQUAL 0)
                list(APPEND unbuilt "${prog}")
                message(NOTICE "building ${target} failed:\n${one_out}")
            endif()
        endforeach()
    endif()
endif()

# ---- check every block ----------------------------------------------------------

# Report that block i (the loop's variable) does not hold, and count it.
# The report is printed as it is (an error message would be reflowed).
set(failures 0)
function(tutorial_fail msg)
    math(EXPR n "${failures} + 1")
    set(failures ${n} PARENT_SCOPE)
    message(NOTICE "\n${tutorial_name}:${block_${i}_line}: step \"${block_${i}_step}\": ${msg}")
endfunction()

foreach(i RANGE 1 ${nblocks})
    set(prog "${block_${i}_program}")
    set(body "${block_${i}_body}")
    if(block_${i}_kind STREQUAL "source" AND block_${i}_what STREQUAL "")
        tutorial_fail("a c block must begin with \"/* <file> */\", the file it quotes")
        continue()
    endif()
    if(prog AND prog IN_LIST unbuilt)
        tutorial_fail("${prog} does not build (is it a target of the build? see above)")
        continue()
    endif()
    if(prog AND (NOT EXISTS "${BINARY_DIR}/${prog}" OR IS_DIRECTORY "${BINARY_DIR}/${prog}"))
        tutorial_fail("${prog}: no such program in the build tree ${BINARY_DIR}")
        continue()
    endif()

    if(block_${i}_kind STREQUAL "source")
        set(file "${SOURCE_DIR}/${block_${i}_what}")
        if(NOT EXISTS "${file}")
            tutorial_fail("${block_${i}_what}: no such file in the source tree")
            continue()
        endif()
        file(READ "${file}" src)
        tutorial_split_lines(src "${src}")
        tutorial_drop_blank(src "${src}")
        tutorial_match(problem "${body}" "${src}")
        if(problem)
            tutorial_fail("the code quoted from ${block_${i}_what} is not in it: ${problem}")
        endif()
        continue()
    endif()

    # A run.
    separate_arguments(args UNIX_COMMAND "${block_${i}_what}")
    list(POP_FRONT args)
    message(STATUS "step \"${block_${i}_step}\": $ ${block_${i}_what}")
    execute_process(COMMAND "${BINARY_DIR}/${prog}" ${args}
                    WORKING_DIRECTORY "${BINARY_DIR}"
                    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out
                    TIMEOUT 120)
    # AddressSanitizer says once per process that it sees swapcontext, on
    # stderr, whatever the program does: that line is the build's, not the
    # program's output.
    string(REGEX REPLACE "==[0-9]+==WARNING: ASan doesn't fully support makecontext/swapcontext [^\n]*\n?"
                         "" out "${out}")
    tutorial_split_lines(got "${out}")
    tutorial_drop_blank(got "${got}")
    if(NOT rc EQUAL 0)
        tutorial_fail("$ ${block_${i}_what}: exited with ${rc}; it printed:\n${out}")
        continue()
    endif()
    tutorial_match(problem "${body}" "${got}" MASK WHOLE)
    if(problem)
        string(CONCAT msg "$ ${block_${i}_what}: ${problem}\n"
               "  (numbers, spaces and the length of '#' and '-' bars are not compared)\n"
               "  it printed:\n${out}")
        tutorial_fail("${msg}")
    endif()
endforeach()

if(failures GREATER 0)
    message(FATAL_ERROR "${failures} of ${nblocks} quoted blocks of ${tutorial_name} do not "
                        "hold (see above)")
endif()
message(STATUS "${tutorial_name}: ${nblocks} quoted blocks hold")
