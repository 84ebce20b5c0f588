/*
 * context_aarch64.S - the hand-written context switch (WEAVE_CONTEXT=asm)
 * for aarch64, AAPCS64.
 *
 * void weave__ctx_swap(void **save_sp, void *load_sp)
 *     Store what a callee must preserve (x19-x28, the frame pointer x29,
 *     the link register x30, the low halves d8-d15) and FPCR on the running
 *     stack, store the stack pointer in *save_sp, switch to load_sp, load
 *     the same from there and return into the other context. Frame (176
 *     bytes), from the saved stack pointer up: x19 .. x28, x29, x30,
 *     d8 .. d15, FPCR, padding (context.c builds the first one of a new
 *     context to match). FPCR is written only when it differs from the
 *     leaving context's: a write may serialise the core, and tasks almost
 *     never change it.
 *
 * void weave__ctx_load(void *load_sp)
 *     The second half alone: resume a context, saving nothing.
 *
 * weave__ctx_boot
 *     Where a new context's first return lands: x19 holds the C function to
 *     call (weave__ctx_start), x20 its argument. It never returns.
 *
 * The signal mask is not touched: no system call on a switch.
 */
        .text

        .globl  weave__ctx_swap
        .hidden weave__ctx_swap
        .type   weave__ctx_swap, %function
        .p2align 4
weave__ctx_swap:
        .cfi_startproc
        sub     sp, sp, #176
        stp     x19, x20, [sp, #0]
        stp     x21, x22, [sp, #16]
        stp     x23, x24, [sp, #32]
        stp     x25, x26, [sp, #48]
        stp     x27, x28, [sp, #64]
        stp     x29, x30, [sp, #80]
        stp     d8, d9, [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        mrs     x10, fpcr
        str     x10, [sp, #160]
        mov     x9, sp
        str     x9, [x0]
        mov     x0, x1
        b       1f
        .cfi_endproc
        .size   weave__ctx_swap, .-weave__ctx_swap

        .globl  weave__ctx_load
        .hidden weave__ctx_load
        .type   weave__ctx_load, %function
        .p2align 4
weave__ctx_load:
        .cfi_startproc
        mrs     x10, fpcr
1:      mov     sp, x0
        ldr     x9, [sp, #160]
        cmp     x9, x10         /* the same FPCR: no write, which may serialise */
        b.eq    2f
        msr     fpcr, x9
2:
        ldp     d14, d15, [sp, #144]
        ldp     d12, d13, [sp, #128]
        ldp     d10, d11, [sp, #112]
        ldp     d8, d9, [sp, #96]
        ldp     x29, x30, [sp, #80]
        ldp     x27, x28, [sp, #64]
        ldp     x25, x26, [sp, #48]
        ldp     x23, x24, [sp, #32]
        ldp     x21, x22, [sp, #16]
        ldp     x19, x20, [sp, #0]
        add     sp, sp, #176
        ret
        .cfi_endproc
        .size   weave__ctx_load, .-weave__ctx_load

        .globl  weave__ctx_boot
        .hidden weave__ctx_boot
        .type   weave__ctx_boot, %function
        .p2align 4
weave__ctx_boot:
        .cfi_startproc
        .cfi_undefined x30      /* the bottom of a task's stack: debuggers stop here */
        mov     x0, x20
        blr     x19
        brk     #0
        .cfi_endproc
        .size   weave__ctx_boot, .-weave__ctx_boot

        .section .note.GNU-stack,"",%progbits
