/*
 * vmx_entry.S - the assembly edges of VMX root mode:
 *   core_launch   take the calling CPU over (SimpleVisor-style): the guest
 *                 resumes at our caller's return address with RAX = 0, so
 *                 VMLAUNCH "returns" into the firmware, which runs on as guest;
 *   vmx_exit_stub the VMCS host RIP: save the guest GPRs on the per-vCPU host
 *                 stack, call vmx_exit_handler, restore, VMRESUME;
 *   safe_*        RDMSR/WRMSR/XSETBV for a guest that may fault in root mode;
 *                 trap.c turns the #GP into a return of -1 (extable_fixup).
 */
    .text

/* uint64_t core_launch(struct boot_info *bi)  (SysV; reached from core_start) */
    .globl core_launch
core_launch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    leaq 48(%rsp), %rsi         /* entry rsp: points at our caller's return address */
    call vmx_cpu_prepare        /* (bi, entry_rsp): VMXON, VMCS, guest = firmware state */
    testq %rax, %rax
    jnz 1f
    /* The firmware's callee-saved registers go back into the CPU: VMLAUNCH
     * keeps GPRs, so the guest sees exactly what our caller left there
     * (SDM Vol. 3C 27.3 Checking and Loading Guest State: VM entry loads RSP/RIP/RFLAGS only). */
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    xorl %eax, %eax             /* the guest's view: core_launch returned CORE_OK */
    vmlaunch
    /* VMfailInvalid/VMfailValid (SDM Vol. 3C 31.3 VMX Instructions, VMLAUNCH/VMRESUME): still root, same stack. */
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    call vmx_launch_failed
1:
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret

/* The guest GPRs back from a struct guest_regs at %rsp (vmx.h), the pad
 * dropped: %rsp is then HOST_RSP again. */
.macro POP_GUEST_REGS
    popq %rax
    popq %rcx
    popq %rdx
    popq %rbx
    popq %rbp
    popq %rsi
    popq %rdi
    popq %r8
    popq %r9
    popq %r10
    popq %r11
    popq %r12
    popq %r13
    popq %r14
    popq %r15
    addq $8, %rsp
.endm

/* void vmx_wake_switch(struct vcpu *v, void *rsp, void (*fn)(struct vcpu *))  (noreturn):
 * the S3 wake (resume.c) leaves the trampoline's shared stack for this vCPU's own. */
    .globl vmx_wake_switch
vmx_wake_switch:
    movq %rsi, %rsp
    andq $-16, %rsp
    xorl %ebp, %ebp
    call *%rdx
3:  cli
    hlt
    jmp 3b

/* void vmx_relaunch(struct guest_regs *r)  (noreturn): VMLAUNCH of a VMCS made
 * afresh after S3, with the guest GPRs in *r at the top of the host stack, as
 * vmx_exit_stub keeps them; what is left is HOST_RSP. */
    .globl vmx_relaunch
vmx_relaunch:
    movq %rdi, %rsp
    POP_GUEST_REGS
    vmlaunch
    /* VMfailInvalid/VMfailValid (SDM Vol. 3C 31.3 VMX Instructions, VMLAUNCH/VMRESUME). */
    subq $128, %rsp
    movq %rsp, %rdi
    call vmx_resume_failed
4:  cli
    hlt
    jmp 4b

/*
 * Host RIP.  HOST_RSP is the top of this vCPU's host stack (16-byte
 * aligned), so after 16 pushes the C call is aligned as SysV wants.
 */
    .globl vmx_exit_stub
vmx_exit_stub:
    pushq $0                    /* guest_regs.pad */
    pushq %r15
    pushq %r14
    pushq %r13
    pushq %r12
    pushq %r11
    pushq %r10
    pushq %r9
    pushq %r8
    pushq %rdi
    pushq %rsi
    pushq %rbp
    pushq %rbx
    pushq %rdx
    pushq %rcx
    pushq %rax
    movq %rsp, %rdi
    cld
    call vmx_exit_handler       /* returns when the guest may resume */
    POP_GUEST_REGS
    vmresume
    /* VMRESUME failed (SDM Vol. 3C 31.3 VMX Instructions, VMLAUNCH/VMRESUME): report; never returns. */
    movq %rsp, %rdi
    call vmx_resume_failed
2:  cli
    hlt
    jmp 2b

/* int safe_rdmsr(uint32_t msr, uint64_t *out) */
    .globl safe_rdmsr, safe_rdmsr_insn
safe_rdmsr:
    movl %edi, %ecx
safe_rdmsr_insn:
    rdmsr
    shlq $32, %rdx
    orq %rdx, %rax
    movq %rax, (%rsi)
    xorl %eax, %eax
    ret

/* int safe_wrmsr(uint32_t msr, uint64_t value) */
    .globl safe_wrmsr, safe_wrmsr_insn
safe_wrmsr:
    movl %edi, %ecx
    movl %esi, %eax
    movq %rsi, %rdx
    shrq $32, %rdx
safe_wrmsr_insn:
    wrmsr
    xorl %eax, %eax
    ret

/* int safe_xsetbv(uint32_t xcr, uint64_t value) */
    .globl safe_xsetbv, safe_xsetbv_insn
safe_xsetbv:
    movl %edi, %ecx
    movl %esi, %eax
    movq %rsi, %rdx
    shrq $32, %rdx
safe_xsetbv_insn:
    xsetbv
    xorl %eax, %eax
    ret

    .globl safe_fault
safe_fault:                     /* trap.c resumes here after a #GP in safe_* */
    movl $-1, %eax
    ret
