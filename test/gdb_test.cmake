# gdb_test.cmake - tests the gdb helper (tools/weave-gdb.py) on gdb_target.
#
#     cmake -DGDB=<gdb> -DTARGET=<gdb_target> -DSCRIPT=<weave-gdb.py> -P gdb_test.cmake
#
# Runs gdb in batch mode on gdb_target, stops it in wt_gdb_stop_here (see
# gdb_target.c for where each task is then), runs `weave tasks` and
# `weave bt` for every task, then `bt` and `continue`, and checks that:
#
#   - `weave tasks` lists every task with its name, state and what it waits
#     on (told by its wait kind or by the call it is parked in);
#   - each parked or runnable task's backtrace holds its own function and
#     the call it is in, and no other task's function;
#   - the ended task is reported as ended, and bad ids as errors;
#   - afterwards the thread's own backtrace is back, and the program runs on
#     to a normal exit: the helper left its registers as it found them.
#
# On any failure it prints gdb's whole output.

foreach(var GDB TARGET SCRIPT)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "gdb_test.cmake: -D${var}=... is missing")
    endif()
endforeach()

# No network look-ups for debug information, and no leak check at exit: the
# LeakSanitizer of an ASan build refuses to run under a debugger.
set(ENV{DEBUGINFOD_URLS} "")
set(ENV{ASAN_OPTIONS} "$ENV{ASAN_OPTIONS}:detect_leaks=0")

# Every command's output is preceded by a marker line, so that each check
# can look at the output of one command alone.
set(commands "weave tasks" "weave bt 2" "weave bt 3" "weave bt 4" "weave bt 5"
             "weave bt 6" "weave bt 99" "weave bt root" "bt" "continue")
set(args -batch -nx -iex "set width 0" -iex "set pagination off" -x ${SCRIPT}
         -ex "break wt_gdb_stop_here" -ex run)
foreach(cmd IN LISTS commands)
    list(APPEND args -ex "echo @@@ ${cmd}\\n" -ex "${cmd}")
endforeach()

execute_process(
    COMMAND ${GDB} ${args} ${TARGET}
    OUTPUT_VARIABLE out
    ERROR_VARIABLE out
    RESULT_VARIABLE rc
    TIMEOUT 90)

set(failures "")

# The output of one command: from its marker to the next one.
function(section cmd outvar)
    string(FIND "${out}" "@@@ ${cmd}\n" start)
    if(start LESS 0)
        set(${outvar} "" PARENT_SCOPE)
        return()
    endif()
    string(LENGTH "@@@ ${cmd}\n" skip)
    math(EXPR start "${start} + ${skip}")
    string(SUBSTRING "${out}" ${start} -1 rest)
    string(FIND "${rest}" "@@@ " end)
    if(end GREATER_EQUAL 0)
        string(SUBSTRING "${rest}" 0 ${end} rest)
    endif()
    set(${outvar} "${rest}" PARENT_SCOPE)
endfunction()

# expect(<command> <regex> <what it shows>): the command's output matches.
function(expect cmd regex what)
    section("${cmd}" text)
    if(NOT text MATCHES "${regex}")
        string(REPLACE "\n" "\\n" shown "${regex}")
        set(failures "${failures}  `${cmd}` does not show ${what} (/${shown}/)\n" PARENT_SCOPE)
    endif()
endfunction()

# refuse(<command> <regex> <what>): the command's output does not match.
function(refuse cmd regex what)
    section("${cmd}" text)
    if(text MATCHES "${regex}")
        string(REPLACE "\n" "\\n" shown "${regex}")
        set(failures "${failures}  `${cmd}` shows ${what} (/${shown}/)\n" PARENT_SCOPE)
    endif()
endfunction()

if(NOT rc EQUAL 0)
    string(APPEND failures "  gdb exited with ${rc}\n")
endif()
if(out MATCHES "ptrace: Operation not permitted")
    string(APPEND failures "  gdb may not trace processes here (ptrace refused: "
                           "kernel.yama.ptrace_scope, or a container without SYS_PTRACE)\n")
endif()
if(NOT out MATCHES "Breakpoint 1, wt_gdb_stop_here")
    string(APPEND failures "  gdb_target never reached wt_gdb_stop_here\n")
endif()
if(out MATCHES "Traceback|Python Exception")
    string(APPEND failures "  the helper raised a Python exception\n")
endif()

# The task list: ids in spawn order, names, states, what each waits on.
set(tasks_cmd "weave tasks")
expect("${tasks_cmd}" "\\*  *1 main +RUNNING +- +wt_gdb_stop_here " "main running, marked *")
expect("${tasks_cmd}" "\n  +2 sleeper +PARKED +sleep +weave_sleep in wt_gdb_sleeper "
       "the sleeper parked in weave_sleep")
expect("${tasks_cmd}" "\n  +3 receiver +PARKED +chan +weave_chan_recv in wt_gdb_receiver "
       "the receiver parked on the channel")
expect("${tasks_cmd}" "\n  +4 joiner +PARKED +join +weave_join in wt_gdb_joiner "
       "the joiner parked in weave_join")
expect("${tasks_cmd}" "\n  +5 yielder +READY +- +weave_yield in wt_gdb_yielder "
       "the yielder runnable in weave_yield")
expect("${tasks_cmd}" "\n  +6 task-6 +DONE +- +- " "the unnamed ended task as task-6")
expect("${tasks_cmd}" "5 live, 1 ended and not joined; task switch: (ucontext|asm)"
       "the summary line")

# Each task's backtrace: its own function and call, and nobody else's.
set(fns wt_gdb_sleeper wt_gdb_receiver wt_gdb_joiner wt_gdb_yielder)
set(calls weave_sleep weave_chan_recv weave_join weave_yield)
set(names sleeper receiver joiner yielder)
foreach(i RANGE 3)
    math(EXPR id "${i} + 2")
    list(GET fns ${i} fn)
    list(GET calls ${i} call)
    list(GET names ${i} name)
    expect("weave bt ${id}" "Task ${id} \"${name}\" \\([A-Z]+\\), function ${fn}:\n"
           "the header of task ${id}")
    expect("weave bt ${id}" "\n#[0-9]+ +(0x[0-9a-f]+ in )?${call} \\(" "${call} on the stack")
    expect("weave bt ${id}" "\n#[0-9]+ +(0x[0-9a-f]+ in )?${fn} \\([^\n]*gdb_target\\.c:[0-9]+\n"
           "${fn} on the stack, with its source line")
    expect("weave bt ${id}" "\n#[0-9]+ +(0x[0-9a-f]+ in )?task_main \\(" "task_main at the bottom")
    foreach(other IN LISTS fns)
        if(NOT other STREQUAL fn)
            refuse("weave bt ${id}" "${other} \\(" "another task's function, ${other}")
        endif()
    endforeach()
    refuse("weave bt ${id}" "wt_gdb_stop_here|main_task" "the running task's frames")
endforeach()

expect("weave bt 6" "Task 6 \"task-6\" \\(DONE\\), function wt_gdb_finisher:\n  it has ended"
       "that task 6 has ended")
expect("weave bt 99" "weave: no task 99 in this scheduler" "an error for a task that is not")
expect("weave bt root" " weave_run_with \\(.*\n#[0-9]+ +(0x[0-9a-f]+ in )?main \\("
       "the thread's own stack, weave_run called from main")

# The thread's registers are its own again, and the program ends normally.
expect("bt" "^#0  wt_gdb_stop_here \\(\\) at [^\n]*\n#1 +0x[0-9a-f]+ in main_task \\("
       "the running task's own stack")
expect("continue" "exited normally" "gdb_target running on to a normal exit")

if(failures)
    message("----- gdb output -----\n${out}----- end of gdb output -----")
    message(FATAL_ERROR "the gdb helper failed:\n${failures}")
endif()
message("${out}")
