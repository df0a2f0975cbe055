/*
 * segs.S - segment register loads C cannot express: CS is reloaded with a
 * far return, because a MOV cannot load CS (SDM Vol. 3A 3.4.3 Segment
 * Registers).
 */
    .text
    .globl load_cs
load_cs:                /* void load_cs(uint16_t sel) */
    popq %rax           /* return address */
    movzwq %di, %rdi
    pushq %rdi
    pushq %rax
    lretq

