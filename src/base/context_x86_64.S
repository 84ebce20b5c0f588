/*
 * context_x86_64.S - the hand-written context switch (WEAVE_CONTEXT=asm)
 * for x86-64, System V ABI.
 *
 * void weave__ctx_swap(void **save_sp, void *load_sp)
 *     Push what a callee must preserve (rbp, rbx, r12-r15) and the
 *     floating-point control state (MXCSR, the x87 control word) on the
 *     running stack, store the stack pointer in *save_sp, switch to
 *     load_sp, pop the same from there and return into the other context.
 *     Frame, from the saved stack pointer up: control state (8 bytes: MXCSR,
 *     the x87 control word, two bytes unused), r15, r14, r13, r12, rbx, rbp,
 *     return address (context.c builds the first one of a new context to
 *     match). The control state is loaded only when it differs from the
 *     leaving context's: ldmxcsr and fldcw cost more than the compare, and
 *     tasks almost never change either.
 *
 * void weave__ctx_load(void *load_sp)
 *     The second half alone: resume a context, saving nothing (a task that
 *     has ended leaves its stack for good).
 *
 * weave__ctx_boot
 *     Where a new context's first return lands: r12 holds the C function
 *     to call (weave__ctx_start), r13 its argument. It never returns.
 *
 * The signal mask is not touched: no system call on a switch.
 */
        .text

        .globl  weave__ctx_swap
        .hidden weave__ctx_swap
        .type   weave__ctx_swap, @function
        .p2align 4
weave__ctx_swap:
        .cfi_startproc
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        /* Read back as stored, 4 and 2 bytes: one 8-byte load of the
         * three would wait for the stores to reach the cache. */
        movl    (%rsp), %eax
        movzwl  4(%rsp), %ecx
        movq    %rsp, (%rdi)
        movq    %rsi, %rsp
        cmpl    (%rsp), %eax    /* the same control state: no reload */
        jne     2f
        cmpw    4(%rsp), %cx
        jne     2f
1:      addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret
2:      ldmxcsr (%rsp)
        fldcw   4(%rsp)
        jmp     1b
        .cfi_endproc
        .size   weave__ctx_swap, .-weave__ctx_swap

        .globl  weave__ctx_load
        .hidden weave__ctx_load
        .type   weave__ctx_load, @function
        .p2align 4
weave__ctx_load:
        .cfi_startproc
        movq    %rdi, %rsp
        ldmxcsr (%rsp)
        fldcw   4(%rsp)
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret
        .cfi_endproc
        .size   weave__ctx_load, .-weave__ctx_load

        .globl  weave__ctx_boot
        .hidden weave__ctx_boot
        .type   weave__ctx_boot, @function
        .p2align 4
weave__ctx_boot:
        .cfi_startproc
        .cfi_undefined rip      /* the bottom of a task's stack: debuggers stop here */
        movq    %r13, %rdi
        callq   *%r12
        ud2
        .cfi_endproc
        .size   weave__ctx_boot, .-weave__ctx_boot

        .section .note.GNU-stack,"",@progbits
