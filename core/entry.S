/*
 * entry.S - the core's entry point.  The loader calls core_start(bi) (SysV
 * ABI) on the firmware's stack; we keep the firmware's callee-saved
 * registers, move to the BSP stack inside the reserved region, run
 * core_main and come back the same way with its status in %rax.
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

/* Reloads CS with a far return (SDM Vol 3 5.8.6 / 3.4.3: a mov cannot load CS). */
    .text
    .globl load_cs
load_cs:                /* void load_cs(uint16_t sel) */
    popq %rax           /* return address */
    movzwq %di, %rdi
    pushq %rdi
    pushq %rax
    lretq

    .bss
    .balign 16
fw_rsp:
    .quad 0
    .balign 4096
    .globl bsp_stack_top
bsp_stack:
    .skip 32768
bsp_stack_top:
