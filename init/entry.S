/*
 * entry.S - the core image's entry point.  The loader calls
 * core_start(bi, op) (SysV ABI) on the firmware's stack.  CORE_OP_INIT keeps
 * the firmware's callee-saved registers, moves to the BSP stack inside the
 * reserved region, runs core_main (init/main.c) and comes back the same way
 * with its status in %rax; CORE_OP_LAUNCH goes to core_launch
 * (vmx/vmx_entry.S) on the caller's stack.
 */
    .section .text.entry, "ax"
    .globl core_start
core_start:
    cmpq $1, %rsi       /* CORE_OP_LAUNCH: vmx/vmx_entry.S, on the caller's stack */
    je core_launch
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, fw_rsp(%rip)
    leaq bsp_stack_top(%rip), %rsp
    call core_main
    movq fw_rsp(%rip), %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret

    .bss
    .balign 16
fw_rsp:
    .quad 0
    .balign 4096
    .globl bsp_stack_top
bsp_stack:
    .skip 32768
bsp_stack_top:
