/*
 * wake_blob.S - the wake trampoline (see include/wake.h): the code and GDT that
 * wake_install copies to a page below 1 MiB.  A CPU enters at offset 0 in
 * real mode with CS base = the page (FACS waking vector after S3, or a
 * SIPI), and leaves in 64-bit mode calling the entry on its own stack.
 * SDM Vol. 3A 10.8.5 Initializing IA-32e Mode gives the order: protected
 * mode, CR4.PAE, CR3, EFER.LME, then CR0.PG; a far jump to a 64-bit code
 * segment then leaves compatibility mode.
 *
 * The blob runs at any page: real-mode code addresses it through CS, the
 * 32- and 64-bit code through EBX (the page's physical address, computed
 * from CS before protected mode).  Only three 32-bit fields hold absolute
 * addresses; each is assembled holding its target's offset in the blob and
 * wake_install adds the page's address: the GDT pointer's base and the two
 * far jump targets (wake_blob_patch lists where they are).
 *
 * The data is read-only for the CPUs that run it except next_slot: the
 * descriptors are marked accessed in advance so that loading them writes
 * nothing (SDM Vol. 3A 3.4.5 Segment Descriptors, type bit 0), and any
 * number of CPUs may run the page at once.
 */

/* struct wake_params offsets (wake.c checks them against the C layout). */
#define P_CR0       0
#define P_CR3       8
#define P_CR4       16
#define P_EFER      24
#define P_ENTRY     32
#define P_NEXT_SLOT 40
#define P_NCPUS     44
#define P_STACK     48
#define P_SIZE      560

#define SEL_CODE32 0x08
#define SEL_DATA   0x10
#define SEL_CODE64 0x18

#define CR0_PE     0x00000001
#define CR0_PG     0x80000000
#define CR4_PAE    (1 << 5)
#define CR4_PCIDE  (1 << 17)
#define CR4_VMXE   (1 << 13)
#define CR4_CET    (1 << 23)
#define MSR_EFER   0xc0000080
#define EFER_SCE   (1 << 0)
#define EFER_LME   (1 << 8)
#define EFER_NXE   (1 << 11)

#define OFF(sym) ((sym) - wake_blob)

    .section .rodata.wake_blob, "a"
    .balign 64
    .globl wake_blob, wake_blob_end, wake_blob_params, wake_blob_gdt
    .globl wake_blob_pm32, wake_blob_lm64, wake_blob_patch
    .hidden wake_blob, wake_blob_end, wake_blob_params, wake_blob_gdt
    .hidden wake_blob_pm32, wake_blob_lm64, wake_blob_patch

    .code16
wake_blob:
    cli
    cld
    xorl %ebx, %ebx
    movw %cs, %bx
    shll $4, %ebx                       /* EBX = CS base = the page */
    lgdtl %cs:OFF(gdt_ptr)
    movl %cr0, %eax
    orl $CR0_PE, %eax
    movl %eax, %cr0
    /* ljmpl $SEL_CODE32, $page + OFF(wake_blob_pm32): the offset is patched */
    .byte 0x66, 0xea
jmp32_target:
    .long OFF(wake_blob_pm32)
    .word SEL_CODE32

    .code32
wake_blob_pm32:
    movw $SEL_DATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    /*
     * CR4 without the bits 32-bit mode refuses or that need more than this
     * (PCIDE #GP outside IA-32e mode, CET #GP with CR0.WP clear) and without
     * VMXE (the hypervisor enters VMX itself); PCIDE and CET follow in
     * 64-bit mode.  SDM Vol. 3A 2.5 Control Registers.
     */
    movl OFF(wake_blob_params) + P_CR4(%ebx), %eax
    andl $~(CR4_PCIDE | CR4_CET | CR4_VMXE), %eax
    orl $CR4_PAE, %eax
    movl %eax, %cr4
    movl OFF(wake_blob_params) + P_CR3(%ebx), %eax
    movl %eax, %cr3
    movl OFF(wake_blob_params) + P_EFER(%ebx), %eax
    andl $(EFER_SCE | EFER_NXE), %eax
    orl $EFER_LME, %eax
    xorl %edx, %edx
    movl $MSR_EFER, %ecx
    wrmsr
    movl OFF(wake_blob_params) + P_CR0(%ebx), %eax
    orl $(CR0_PG | CR0_PE), %eax
    movl %eax, %cr0                     /* IA-32e mode, compatibility mode */
    /* ljmpl $SEL_CODE64, $page + OFF(wake_blob_lm64): the offset is patched */
    .byte 0xea
jmp64_target:
    .long OFF(wake_blob_lm64)
    .word SEL_CODE64

    .code64
wake_blob_lm64:
    movl %ebx, %ebx     /* the upper halves are undefined after the switch */
    leaq OFF(wake_blob_params)(%rbx), %rsi
    movq P_CR4(%rsi), %rax
    btrq $13, %rax                      /* CR4_VMXE */
    movq %rax, %cr4
    movl $1, %eax
    lock xaddl %eax, P_NEXT_SLOT(%rsi)
    cmpl P_NCPUS(%rsi), %eax
    jae 1f
    movq P_STACK(%rsi, %rax, 8), %rsp
    andq $-16, %rsp                     /* SysV: 16-byte aligned at the call */
    movl %eax, %edi
    callq *P_ENTRY(%rsi)
1:  cli                                 /* no slot, or the entry returned */
    hlt
    jmp 1b

    .balign 8
wake_blob_gdt:
    .quad 0
    .quad 0x00cf9b000000ffff            /* 0x08: 32-bit code, flat, accessed */
    .quad 0x00cf93000000ffff            /* 0x10: data, flat, accessed */
    .quad 0x00af9b000000ffff            /* 0x18: 64-bit code (L=1), accessed */
gdt_end:
    .balign 8
    .word 0                             /* keeps the 32-bit base aligned */
gdt_ptr:
    .word gdt_end - wake_blob_gdt - 1
gdt_base:
    .long OFF(wake_blob_gdt)            /* patched: + the page */

    .balign 64
wake_blob_params:
    .skip P_SIZE                        /* struct wake_params, filled by wake_install */
wake_blob_end:

    /* Where the three absolute fields are, as offsets in the blob. */
    .balign 4
wake_blob_patch:
    .long OFF(gdt_base), OFF(jmp32_target), OFF(jmp64_target)

    .section .note.GNU-stack, "", @progbits
