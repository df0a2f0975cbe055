/*
 * elf_load.c - loads the core image (see elf_load.h).  No C library: this
 * runs inside the EFI loader.  Every field read from the file is checked
 * against the file's size before use, since a corrupt hv.efi must be
 * refused, not followed into random memory.
 */
#include "elf_load.h"

#include <stdbool.h>

#define PT_LOAD           1
#define PT_DYNAMIC        2
#define DT_NULL           0
#define DT_RELA           7
#define DT_RELASZ         8
#define DT_RELAENT        9
#define R_X86_64_NONE     0
#define R_X86_64_RELATIVE 8
#define PAGE              4096ull

struct ehdr {
    uint8_t ident[16];
    uint16_t type, machine;
    uint32_t version;
    uint64_t entry, phoff, shoff;
    uint32_t flags;
    uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};

struct phdr {
    uint32_t type, flags;
    uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

struct dyn {
    int64_t tag;
    uint64_t val;
};

struct rela {
    uint64_t offset, info;
    int64_t addend;
};

static const char *check_header(const void *elf, size_t len, const struct ehdr **out)
{
    const struct ehdr *h = elf;
    if (len < sizeof(*h))
        return "file too small for an ELF header";
    if (h->ident[0] != 0x7f || h->ident[1] != 'E' || h->ident[2] != 'L' || h->ident[3] != 'F')
        return "not an ELF file";
    if (h->ident[4] != 2 || h->ident[5] != 1)
        return "not a little-endian ELF64 file";
    if (h->type != 3 /* ET_DYN */ || h->machine != 62 /* EM_X86_64 */)
        return "not an x86-64 position-independent executable";
    if (h->phentsize != sizeof(struct phdr) || h->phnum == 0 || h->phoff > len ||
        (uint64_t)h->phnum * sizeof(struct phdr) > len - h->phoff)
        return "bad program header table";
    *out = h;
    return 0;
}

static const struct phdr *ph(const void *elf, const struct ehdr *h, unsigned i)
{
    return (const struct phdr *)((const uint8_t *)elf + h->phoff) + i;
}

uint64_t elf_image_size(const void *elf, size_t len, const char **why)
{
    const struct ehdr *h;
    const char *w = check_header(elf, len, &h);
    uint64_t top = 0;
    for (unsigned i = 0; !w && i < h->phnum; i++) {
        const struct phdr *p = ph(elf, h, i);
        if (p->type != PT_LOAD)
            continue;
        if (p->memsz < p->filesz || p->offset > len || p->filesz > len - p->offset)
            w = "PT_LOAD segment outside the file";
        else if (p->vaddr > (1ull << 40) || p->memsz > (1ull << 40))
            w = "PT_LOAD segment too large";
        else if (p->vaddr + p->memsz > top)
            top = p->vaddr + p->memsz;
    }
    if (!w && top == 0)
        w = "no PT_LOAD segment";
    if (w) {
        if (why)
            *why = w;
        return 0;
    }
    return (top + PAGE - 1) & ~(PAGE - 1);
}

const char *elf_load(const void *elf, size_t len, void *dest, uint64_t dest_size, uint64_t *entry)
{
    const char *why = 0;
    uint64_t need = elf_image_size(elf, len, &why);
    if (!need)
        return why;
    if (need > dest_size)
        return "destination too small for the image";
    const struct ehdr *h = elf;
    if (h->entry >= need)
        return "entry point outside the image";
    uint8_t *d = dest;
    uint64_t base = (uint64_t)(uintptr_t)dest;
    for (uint64_t i = 0; i < need; i++)
        d[i] = 0;

    const struct phdr *dyn_ph = 0;
    for (unsigned i = 0; i < h->phnum; i++) {
        const struct phdr *p = ph(elf, h, i);
        if (p->type == PT_DYNAMIC)
            dyn_ph = p;
        if (p->type != PT_LOAD)
            continue;
        const uint8_t *src = (const uint8_t *)elf + p->offset;
        for (uint64_t j = 0; j < p->filesz; j++)
            d[p->vaddr + j] = src[j];
    }

    if (dyn_ph) {
        if (dyn_ph->offset > len || dyn_ph->filesz > len - dyn_ph->offset)
            return "PT_DYNAMIC outside the file";
        const struct dyn *dy = (const struct dyn *)((const uint8_t *)elf + dyn_ph->offset);
        uint64_t n = dyn_ph->filesz / sizeof(*dy), rela = 0, relasz = 0,
                 relaent = sizeof(struct rela);
        for (uint64_t i = 0; i < n && dy[i].tag != DT_NULL; i++) {
            if (dy[i].tag == DT_RELA)
                rela = dy[i].val;
            else if (dy[i].tag == DT_RELASZ)
                relasz = dy[i].val;
            else if (dy[i].tag == DT_RELAENT)
                relaent = dy[i].val;
        }
        if (relaent != sizeof(struct rela))
            return "unexpected relocation entry size";
        /* DT_RELA is an address in the image: read the table from the loaded copy */
        if (rela > need || relasz > need - rela)
            return "relocation table outside the image";
        const struct rela *r = (const struct rela *)(d + rela);
        for (uint64_t i = 0; i < relasz / sizeof(*r); i++) {
            uint32_t type = (uint32_t)r[i].info;
            if (type == R_X86_64_NONE)
                continue;
            if (type != R_X86_64_RELATIVE)
                return "relocation type other than R_X86_64_RELATIVE";
            if (r[i].offset > need - 8)
                return "relocation outside the image";
            uint64_t v = base + (uint64_t)r[i].addend;
            for (int b = 0; b < 8; b++)
                d[r[i].offset + b] = (uint8_t)(v >> (8 * b));
        }
    }
    *entry = base + h->entry;
    return 0;
}
