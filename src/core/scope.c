/*
 * scope.c - the open deadline scopes and shields of a task, and dropping
 * those left open.
 *
 * A task keeps its open scopes in order in its record (t->scopes, oldest
 * first), and one number summing them up: t->deadline, the earliest
 * deadline that applies now (each record keeps the one that applies while
 * it is the innermost), with t->shields counting the open shields, which
 * turn cancellation off. deadline.c's public calls open and close them.
 *
 * A scope left open by an early return lives in a frame that is gone. Its
 * struct must not be read again (the memory is someone else's now), which
 * is why what an end, a report and a drop need (the struct's address and
 * kind, where it was begun, the deadline while it is the innermost) is in
 * the task's record: the users' structs are written at begin, and read
 * only by the end that names them. A scope on the task's stack is dead
 * once the caller of a public weave call sits above it: every live frame
 * of the task lies at or above the stack pointer of the call (its CFA).
 * t->scope_low, the lowest open scope on the stack, makes that one compare
 * at the entry of each blocking call (WEAVE__SCOPES_CHECK). Dropping the
 * oldest dead scope and all begun after it leaves only live scopes, from
 * whose records t->deadline and t->shields are summed up again.
 */
#include "core/scope.h"

#include <dlfcn.h>
#include <stdio.h>

#ifdef WEAVE_ASAN
#include <sanitizer/asan_interface.h>
#endif

#define KIND_MASK ((uintptr_t)7) /* the kind, in the low bits of scopes[].p */

static bool on_stack(const struct weave__task *t, uintptr_t p)
{
    return p - (uintptr_t)t->stack.lo < t->stack.size;
}

static uintptr_t addr(const struct weave__scope *sc)
{
    return sc->p & ~KIND_MASK;
}

static int kind(const struct weave__scope *sc)
{
    return (int)(sc->p & KIND_MASK);
}

/*
 * Where on the stack a scope lies, for the liveness check: the struct's own
 * address. But ASan's stack-use-after-return detection moves a local whose
 * address escapes into a fake frame off the stack; such a scope gets place
 * 0, which keeps t->scope_low at 0 and so sends every check of the task to
 * weave__scopes_popped, which asks ASan whether the fake frame is still in
 * use (ASan marks a frame retired when its function returns, and reading
 * that mark reads nothing of the frame).
 */
#ifdef WEAVE_ASAN
static uintptr_t place_of(const void *p)
{
    void *fake = __asan_get_current_fake_stack();

    return fake && __asan_addr_is_in_fake_stack(fake, (void *)p, NULL, NULL) ? 0 : (uintptr_t)p;
}

static uintptr_t place(const struct weave__scope *sc)
{
    return sc->place;
}

static bool dead(const struct weave__task *t, const struct weave__scope *sc, uintptr_t sp)
{
    if (sc->place == 0)
        return !__asan_addr_is_in_fake_stack(__asan_get_current_fake_stack(), (void *)addr(sc),
                                             NULL, NULL);
    return on_stack(t, sc->place) && sc->place < sp;
}
#else
static uintptr_t place(const struct weave__scope *sc)
{
    return addr(sc);
}

static bool dead(const struct weave__task *t, const struct weave__scope *sc, uintptr_t sp)
{
    return on_stack(t, addr(sc)) && addr(sc) < sp;
}
#endif

/* Whether sc lowers t->scope_low (its place is 0 for a fake frame: below
 * every stack pointer). */
static bool counts_low(const struct weave__task *t, const struct weave__scope *sc)
{
    return place(sc) == 0 || on_stack(t, place(sc));
}

/* The deadline and the shields that apply with scopes[0 .. n) open, the
 * lowest of those on the stack, and n, after scopes were ended or dropped;
 * from the task's own record, never the users' structs. */
static void settle(struct weave__task *t, uint32_t n)
{
    uintptr_t low = UINTPTR_MAX;
    uint32_t shields = 0;

    for (uint32_t i = 0; i < n; i++) {
        if (counts_low(t, &t->scopes[i]) && place(&t->scopes[i]) < low)
            low = place(&t->scopes[i]);
        shields += kind(&t->scopes[i]) == WEAVE__SCOPE_SHIELD;
    }
    t->nscopes = n;
    t->deadline = n > 0 ? t->scopes[n - 1].deadline : WEAVE__NO_DEADLINE;
    t->shields = shields;
    t->scope_low = low;
}

static void scope_push(struct weave__task *t, struct weave_scope_private *p, int kind,
                       int64_t deadline, const void *where)
{
    struct weave__scope *sc = &t->scopes[t->nscopes++];

    p->kind = kind;
    sc->p = (uintptr_t)p | (uintptr_t)kind;
    sc->where = where;
    sc->deadline = deadline;
#ifdef WEAVE_ASAN
    sc->place = place_of(p);
#endif
    if (counts_low(t, sc) && place(sc) < t->scope_low)
        t->scope_low = place(sc);
    t->deadline = deadline;
    if (kind == WEAVE__SCOPE_SHIELD)
        t->shields++;
}

/* End the innermost scope (the caller's, whose struct is live). */
static void scope_pop(struct weave__task *t)
{
    const struct weave__scope *sc = &t->scopes[t->nscopes - 1];
    struct weave_scope_private *p = (struct weave_scope_private *)addr(sc);

    p->kind = WEAVE__SCOPE_NONE;
    if (place(sc) == t->scope_low) {
        settle(t, t->nscopes - 1);
        return;
    }
    if (kind(sc) == WEAVE__SCOPE_SHIELD)
        t->shields--;
    t->nscopes--;
    t->deadline = t->nscopes > 0 ? t->scopes[t->nscopes - 1].deadline : WEAVE__NO_DEADLINE;
}

/* "lookup+0x1c (./prog)", or the bare address. */
void weave__scope_describe(char *out, size_t cap, const void *where)
{
    Dl_info info;

    if (dladdr(where, &info) && info.dli_sname && info.dli_saddr)
        (void)snprintf(out, cap, "%s+0x%zx (%s)", info.dli_sname,
                       (size_t)((const char *)where - (const char *)info.dli_saddr),
                       info.dli_fname ? info.dli_fname : "?");
    else if (info.dli_fname && info.dli_fbase)
        (void)snprintf(out, cap, "%p (%s+0x%zx)", where, info.dli_fname,
                       (size_t)((const char *)where - (const char *)info.dli_fbase));
    else
        (void)snprintf(out, cap, "%p", where);
}

/* Report scopes[i], which was never ended (why says how we know), and drop
 * it with every scope begun after it. No struct of theirs is touched: a
 * later end of one that is live finds it gone (EINVAL). */
static void drop_from(struct weave__task *t, uint32_t i, const char *why)
{
    const struct weave__scope *dead = &t->scopes[i];
    char where[256];
    uint32_t after = t->nscopes - i - 1;

    weave__scope_describe(where, sizeof(where), dead->where);
    (void)fprintf(stderr,
                  "weave: task %llu (%s): the %s begun at %s was never ended (%s); dropped, "
                  "with the %u scope%s begun after it\n",
                  (unsigned long long)t->id, weave__task_name(t),
                  kind(dead) == WEAVE__SCOPE_SHIELD ? "shield" : "deadline scope", where, why,
                  after, after == 1 ? "" : "s");
    settle(t, i);
}

void weave__scopes_popped(struct weave__task *t, uintptr_t sp)
{
    for (uint32_t i = 0; i < t->nscopes; i++)
        if (dead(t, &t->scopes[i], sp)) {
            drop_from(t, i, "its function returned");
            return;
        }
}

void weave__scopes_at_end(struct weave__task *t)
{
    if (t->nscopes > 0)
        drop_from(t, 0, "the task ended");
}

bool weave__scope_open(struct weave__task *t, struct weave_scope_private *p, int kind, int64_t at,
                       const void *where)
{
    /* A struct already open in the task is one whose begin was left behind
     * in a frame since returned, and is being reused: that one goes first. */
    for (uint32_t i = 0; i < t->nscopes; i++)
        if (addr(&t->scopes[i]) == (uintptr_t)p) {
            drop_from(t, i, "its struct was begun again");
            break;
        }
    if (t->nscopes == WEAVE_SCOPE_MAX)
        return false;
    scope_push(t, p, kind, kind == WEAVE__SCOPE_SHIELD || at < t->deadline ? at : t->deadline,
               where);
    return true;
}

bool weave__scope_is_innermost(const struct weave__task *t, const struct weave_scope_private *p)
{
    return t->nscopes > 0 && addr(&t->scopes[t->nscopes - 1]) == (uintptr_t)p;
}

void weave__scope_close_innermost(struct weave__task *t)
{
    scope_pop(t);
}

bool weave__scope_close_through(struct weave__task *t, struct weave_scope_private *p)
{
    uint32_t i;

    for (i = t->nscopes; i > 0 && addr(&t->scopes[i - 1]) != (uintptr_t)p; i--)
        ;
    if (i == 0)
        return false;
    settle(t, i - 1);
    p->kind = WEAVE__SCOPE_NONE;
    return true;
}
