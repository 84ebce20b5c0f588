# weave-gdb.py - gdb commands for programs that use weave.
#
#     (gdb) source /usr/local/share/weave/gdb/weave-gdb.py
#     (gdb) weave tasks          the tasks of this thread's scheduler
#     (gdb) weave bt 3           the backtrace of task 3, wherever it is parked
#     (gdb) weave bt 3 full      ... with the arguments of `bt` (full, -N, ...)
#     (gdb) weave bt all         every task's backtrace
#     (gdb) weave bt root        the thread's own stack (weave_run's), saved
#                                while a task runs
#
# What it reads: the thread-local weave__tls (struct weave__sched *, the
# scheduler running on the selected thread), its `live` list of task records
# (struct weave__task, linked through their `live` member, each at the top
# of its task's stack), and its handle table, which holds every task not
# released yet: the live ones and the ended ones nobody has joined. It needs
# weave's debug information (a build with -g: Debug or RelWithDebInfo).
#
# A parked or runnable task's registers are the ones saved by its last
# switch, in its struct weave__ctx. `weave bt` loads them into the selected
# thread (stack pointer, instruction pointer, frame pointer and the other
# callee-saved registers), runs `bt`, then puts the thread's own registers
# back, also when `bt` fails or is interrupted. That needs a live process:
# registers cannot be written into a core file. x86-64 only, with either
# task switch: makecontext/swapcontext (the registers are in the ucontext_t)
# or weave's own (WEAVE_CONTEXT=asm: pushed on the task's stack, see
# src/base/context_x86_64.S). Which one the program uses is read from the type of
# struct weave__ctx in the debug information.
#
# Nothing here changes the program's memory or its scheduler.

import gdb

# enum weave__task_state (src/core/sched.h).
_STATES = {0: "READY", 1: "RUNNING", 2: "PARKED", 3: "DONE"}
_DONE = 3

# enum weave__task_flag (src/core/sched.h), the ones worth showing.
_FLAGS = ((1 << 0, "cancelled"), (1 << 1, "detached"))

# enum weave_wait_kind (include/weave.h), in case the debug information
# holds the field but not the enum.
_WAIT_KINDS = [
    "none",
    "sleep",
    "fd",
    "join",
    "group",
    "chan",
    "select",
    "mutex",
    "cond",
    "sem",
    "event",
    "offload",
    "signal",
    "call",
    "process",
    "io_uring",
]

# Without a wait kind in struct weave__wait, what a parked task waits on is
# told by the public call it is parked in (longest prefix first).
_CALL_KINDS = (
    ("weave_sleep", "sleep"),
    ("weave_wait_fd", "fd"),
    ("weave_read", "fd"),
    ("weave_write", "fd"),
    ("weave_recv", "fd"),
    ("weave_send", "fd"),
    ("weave_accept", "fd"),
    ("weave_connect", "fd"),
    ("weave_tcp_", "fd"),
    ("weave_unix_", "fd"),
    ("weave_join", "join"),
    ("weave_group_", "group"),
    ("weave_chan_", "chan"),
    ("weave_select", "select"),
    ("weave_mutex_", "mutex"),
    ("weave_cond_", "cond"),
    ("weave_sem_", "sem"),
    ("weave_event_", "event"),
    ("weave_offload", "offload"),
    ("weave_signal", "signal"),
    ("weave_yield", "-"),
)

# Where swapcontext saves each register: indexes of uc_mcontext.gregs in
# glibc's x86-64 <sys/ucontext.h> (REG_R8 = 0 ... REG_RIP = 16).
_UC_GREGS = {
    "r12": 4,
    "r13": 5,
    "r14": 6,
    "r15": 7,
    "rbp": 10,
    "rbx": 11,
    "rsp": 15,
    "rip": 16,
}

# The frame weave__ctx_swap leaves on a task's stack, from the saved stack
# pointer up, in 8-byte words: the floating-point control state, r15, r14,
# r13, r12, rbx, rbp, then the return address; the switch returns with the
# stack pointer just above it.
_ASM_FRAME = {"r15": 1, "r14": 2, "r13": 3, "r12": 4, "rbx": 5, "rbp": 6, "rip": 7}
_ASM_FRAME_WORDS = 8

# How many frames to look through for the public call a task is in.
_WHERE_DEPTH = 64


class WeaveError(gdb.GdbError):
    pass


def _reported(invoke):
    """Report memory that cannot be read (a corrupt list, a core file that
    lacks the task stacks) as a plain gdb error, not a Python exception."""

    def wrapper(self, arg, from_tty):
        try:
            return invoke(self, arg, from_tty)
        except gdb.MemoryError as e:
            raise WeaveError("weave: cannot read the program's memory: %s" % e)

    wrapper.__doc__ = invoke.__doc__
    return wrapper


def _u64(value):
    return int(value.cast(gdb.lookup_type("unsigned long long")))


def _field_names(type_):
    return {f.name for f in type_.strip_typedefs().fields()}


def _sched():
    """This thread's scheduler (a struct weave__sched *), or an error."""
    try:
        s = gdb.parse_and_eval("weave__tls")
    except gdb.error as e:
        raise WeaveError(
            "weave: cannot read weave__tls (%s); is the program running, "
            "linked with weave, and weave built with debug information?" % e
        )
    if _u64(s) == 0:
        thread = gdb.selected_thread()
        raise WeaveError(
            "weave: no weave scheduler runs on thread %d; select the thread "
            "that called weave_run (`info threads`, `thread N`)"
            % (thread.num if thread else 0)
        )
    return s


def _task_ptr_type():
    return gdb.lookup_type("struct weave__task").pointer()


def _member_offset(type_name, member):
    for f in gdb.lookup_type(type_name).fields():
        if f.name == member:
            return f.bitpos // 8
    raise WeaveError("weave: struct %s has no member %s" % (type_name, member))


def _live_tasks(s):
    """The records on s's live list, in list order (spawn order)."""
    off = _member_offset("struct weave__task", "live")
    char_p = gdb.lookup_type("char").pointer()
    head = _u64(s["live"].address)
    node = s["live"]["next"]
    tasks, limit = [], int(s["live_count"]) + 1
    while _u64(node) != head:
        if len(tasks) > limit:
            raise WeaveError("weave: the live list looks corrupt (longer than live_count)")
        tasks.append((node.cast(char_p) - off).cast(_task_ptr_type()).dereference())
        node = node["next"]
    return tasks


def _ended_tasks(s):
    """Ended records not released yet (not joined), from the handle table;
    None if this weave has no handle table to read."""
    if "handles" not in _field_names(s.dereference().type):
        return None
    handles = s["handles"]
    ended = []
    for i in range(int(handles["nslots"])):
        t = handles["slots"][i]["task"]
        if _u64(t) != 0 and int(t["state"]) == _DONE:
            ended.append(t.dereference())
    return sorted(ended, key=lambda t: int(t["id"]))


def _name(t):
    name = t["name"].string(errors="replace") if int(t["name"][0]) != 0 else ""
    return name if name else "task-%d" % int(t["id"])


def _wait_kind(t):
    """The wait kind of a parked task, from struct weave__wait's `kind`, or
    None when this weave has no such field."""
    w = t["wait"]
    if _u64(w) == 0 or "kind" not in _field_names(w.dereference().type):
        return None
    kind = int(w["kind"])
    try:
        enum = gdb.lookup_type("enum weave_wait_kind")
        for f in enum.fields():
            if f.enumval == kind:
                return f.name.replace("WEAVE_WAIT_", "").lower()
    except gdb.error:
        pass
    return _WAIT_KINDS[kind] if kind < len(_WAIT_KINDS) else "kind-%d" % kind


def _backend():
    """ucontext or asm, from the layout of struct weave__ctx."""
    fields = _field_names(gdb.lookup_type("struct weave__ctx"))
    if "uc" in fields:
        return "ucontext"
    if "sp" in fields:
        return "asm"
    raise WeaveError("weave: unknown struct weave__ctx layout: %s" % sorted(fields))


def _check_arch():
    arch = gdb.selected_frame().architecture().name()
    if "x86-64" not in arch:
        raise WeaveError("weave: saved task registers are read on x86-64 only, not %s" % arch)


def _saved_registers(ctx):
    """The registers a switch saved in ctx (struct weave__ctx), as a dict."""
    _check_arch()
    if _backend() == "ucontext":
        gregs = ctx["uc"]["uc_mcontext"]["gregs"]
        return {reg: _u64(gregs[i]) for reg, i in _UC_GREGS.items()}
    sp = _u64(ctx["sp"])
    words = gdb.Value(sp).cast(gdb.lookup_type("unsigned long long").pointer())
    regs = {reg: _u64(words[i]) for reg, i in _ASM_FRAME.items()}
    regs["rsp"] = sp + 8 * _ASM_FRAME_WORDS
    return regs


class _Registers:
    """Load a saved register set into the selected thread for the duration
    of a with block, and put the thread's own back afterwards."""

    def __init__(self, regs):
        self.regs = regs
        self.saved = {}
        self.level = 0

    def __enter__(self):
        if not gdb.selected_inferior().pid:
            raise WeaveError("weave: the program is not running")
        self.level = gdb.selected_frame().level()
        # Writes must go to frame 0, the thread's real registers: in an
        # outer frame they would go to where that frame saved them.
        gdb.newest_frame().select()
        newest = gdb.newest_frame()
        self.saved = {reg: _u64(newest.read_register(reg)) for reg in self.regs}
        try:
            self._load(self.regs)
        except BaseException:
            self._load(self.saved)
            raise
        return self

    def __exit__(self, *exc):
        gdb.newest_frame().select()
        self._load(self.saved)
        try:
            gdb.execute("select-frame %d" % self.level, to_string=True)
        except gdb.error:
            pass
        return False

    @staticmethod
    def _load(regs):
        for reg, value in regs.items():
            gdb.execute("set $%s = %d" % (reg, value), to_string=True)


def _where_in(frame):
    """(public call, its caller) from the innermost public weave_ call on the
    stack starting at frame; (innermost function, None) when there is none."""
    innermost = None
    depth = 0
    while frame is not None and depth < _WHERE_DEPTH:
        name = frame.name()
        if innermost is None and name:
            innermost = name
        if name and name.startswith("weave_") and not name.startswith("weave__"):
            older = frame.older()
            while older is not None and older.name() is None:
                older = older.older()
            return name, older.name() if older is not None else None
        try:
            frame = frame.older()
        except gdb.error:
            break
        depth += 1
    return innermost, None


def _where(s, t):
    """(call, caller) for a task: its own stack if runnable or parked, the
    thread's if it is the one running; (None, None) if it has ended."""
    state = int(t["state"])
    if state == _DONE:
        return None, None
    if _u64(t.address) == _u64(s["current"]):
        return _where_in(gdb.newest_frame())
    with _Registers(_saved_registers(t["ctx"])):
        return _where_in(gdb.newest_frame())


def _call_kind(call):
    if call is None:
        return None
    for prefix, kind in _CALL_KINDS:
        if call.startswith(prefix):
            return kind
    return None


def _all_tasks(s):
    tasks = _live_tasks(s)
    ended = _ended_tasks(s)
    seen = {_u64(t.address) for t in tasks}
    if ended is not None:
        tasks += [t for t in ended if _u64(t.address) not in seen]
    return tasks, ended is not None


def _find_task(s, ident):
    tasks, _ = _all_tasks(s)
    for t in tasks:
        if int(t["id"]) == ident:
            return t
    known = ", ".join(str(int(t["id"])) for t in tasks)
    raise WeaveError("weave: no task %d in this scheduler (tasks: %s)" % (ident, known))


def _kib(n):
    return "%d KiB" % (n // 1024) if n % 1024 == 0 else "%.1f KiB" % (n / 1024.0)


class WeaveCommand(gdb.Command):
    """Commands for weave's tasks: weave tasks, weave bt."""

    def __init__(self):
        super().__init__("weave", gdb.COMMAND_STACK, gdb.COMPLETE_NONE, True)


class WeaveTasksCommand(gdb.Command):
    """List the tasks of the selected thread's weave scheduler.

Usage: weave tasks

One line per task: its id, name, state (READY, RUNNING, PARKED, DONE),
what it waits on while parked, the call it is in and who made that call,
and its stack (lowest address, size, bytes in use below the saved stack
pointer). The running task is marked with *. Live tasks come first, then
those that ended and are not joined yet, each in spawn order."""

    def __init__(self):
        super().__init__("weave tasks", gdb.COMMAND_STACK, gdb.COMPLETE_NONE)

    @_reported
    def invoke(self, arg, from_tty):
        s = _sched()
        tasks, ended_listed = _all_tasks(s)
        current = _u64(s["current"])
        has_kind = "kind" in _field_names(gdb.lookup_type("struct weave__wait"))
        rows = []
        unknown = None
        for t in tasks:
            state = int(t["state"])
            try:
                call, caller = _where(s, t)
            except (gdb.error, WeaveError) as e:
                call, caller, unknown = "?", None, str(e)
            kind = None
            if state == 2:
                # A kind of "none" on a parked task: a wait that does not
                # say what it is; the call it is in tells.
                if has_kind:
                    kind = _wait_kind(t)
                if kind in (None, "none"):
                    kind = _call_kind(call)
            if call is None:
                where = "-"
            elif caller is None:
                where = call
            else:
                where = "%s in %s" % (call, caller)
            flags = "".join("," + name for bit, name in _FLAGS if int(t["flags"]) & bit)
            stack = t["stack"]
            lo, size = _u64(stack["lo"]), int(stack["size"])
            if _u64(t.address) == current or state == _DONE or unknown:
                used = ""
            else:
                sp = _saved_registers(t["ctx"])["rsp"]
                used = ", %s used" % _kib(_u64(t.address) - sp) if lo <= sp < lo + size else ""
            rows.append(
                (
                    "*" if _u64(t.address) == current else " ",
                    str(int(t["id"])),
                    _name(t),
                    _STATES.get(state, "state-%d" % state) + flags,
                    kind or "-",
                    where,
                    "0x%x %s%s" % (lo, _kib(size), used),
                )
            )
        header = ("", "ID", "NAME", "STATE", "WAITS ON", "IN", "STACK")
        widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header) - 1)]
        for r in [header] + rows:
            cells = [r[0].ljust(widths[0]), r[1].rjust(widths[1])]
            cells += [r[i].ljust(widths[i]) for i in range(2, len(widths))]
            gdb.write(" ".join(cells) + " " + r[-1] + "\n")
        notes = []
        if not has_kind:
            notes.append("WAITS ON is told by the call the task is parked in")
        if unknown:
            notes.append("IN is unknown: %s" % unknown)
        if not ended_listed:
            notes.append("ended tasks not joined yet are not listed")
        ended = sum(1 for t in tasks if int(t["state"]) == _DONE)
        gdb.write(
            "%d live, %d ended and not joined; task switch: %s%s\n"
            % (
                len(tasks) - ended,
                ended,
                _backend(),
                "".join("; " + n for n in notes),
            )
        )


class WeaveBtCommand(gdb.Command):
    """Print the backtrace of a weave task.

Usage: weave bt ID [BT-ARGS...]
       weave bt all [BT-ARGS...]
       weave bt root [BT-ARGS...]

ID is a task id, as `weave tasks` lists them (weave_task_id). For a parked
or runnable task, the registers its last switch saved are loaded into the
selected thread, `bt BT-ARGS` runs, and the thread's own registers are put
back. For the running task it is the thread's own backtrace. `all` prints
every task's; `root` the thread's own stack, where weave_run runs the
scheduler, as saved while a task runs."""

    def __init__(self):
        super().__init__("weave bt", gdb.COMMAND_STACK, gdb.COMPLETE_NONE)

    @_reported
    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        if not argv:
            raise WeaveError("usage: weave bt ID|all|root [bt arguments]")
        what, bt = argv[0], " ".join(["bt"] + argv[1:])
        s = _sched()
        if what == "root":
            if _u64(s["current"]) == 0:
                raise WeaveError("weave: no task runs: the thread is on its own stack, see `bt`")
            gdb.write("The thread's own stack (weave_run):\n")
            with _Registers(_saved_registers(s["root"])):
                gdb.execute(bt)
            return
        if what == "all":
            tasks, _ = _all_tasks(s)
        else:
            try:
                ident = int(what, 0)
            except ValueError:
                raise WeaveError("weave: not a task id: %s" % what)
            tasks = [_find_task(s, ident)]
        for i, t in enumerate(tasks):
            if i:
                gdb.write("\n")
            self._task_bt(s, t, bt)

    @staticmethod
    def _task_bt(s, t, bt):
        state = int(t["state"])
        gdb.write(
            'Task %d "%s" (%s), function %s:\n'
            % (int(t["id"]), _name(t), _STATES.get(state, "state-%d" % state), _symbol(t["fn"]))
        )
        if state == _DONE:
            gdb.write("  it has ended: no stack to show (join it to release it)\n")
            return
        if _u64(t.address) == _u64(s["current"]):
            gdb.execute(bt)
            return
        with _Registers(_saved_registers(t["ctx"])):
            gdb.execute(bt)


def _symbol(fn):
    block = gdb.block_for_pc(_u64(fn))
    if block is not None and block.function is not None:
        return block.function.name
    return "0x%x" % _u64(fn)


WeaveCommand()
WeaveTasksCommand()
WeaveBtCommand()
