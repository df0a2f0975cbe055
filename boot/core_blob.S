/*
 * core_blob.S - the core image (build/core.elf) carried inside hv.efi, so
 * one file is all an appliance vendor installs.  The loader relocates it
 * into the reserved region at run time.
 */
    .section .rodata
    .balign 4096
    .globl core_blob, core_blob_end
core_blob:
    .incbin CORE_ELF_PATH
core_blob_end:
    .section .note.GNU-stack, "", @progbits
