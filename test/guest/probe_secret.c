/*
 * probe_secret: the hypervisor's key is out of the guest's reach
 * (docs/security.md, "The key").  With secret=YEK (the key reversed, so the
 * command line does not hold it) the agent checks, in order:
 *   - hv.conf on the ESP holds no key line and not the key (hv.efi moved it);
 *   - before ExitBootServices the key is in the UEFI variable HvKey with
 *     attributes NV|BS (boot code, such as hv.efi, can read it);
 *   - after ExitBootServices (the agent ends boot services itself, as an OS
 *     loader does) GetVariable does not find HvKey;
 *   - no byte string equal to the key is anywhere in the memory map's RAM
 *     (every type but MMIO), the agent's own copy of the needle excepted,
 *     outside runtime-services memory.  Copies there are the firmware's
 *     variable store and its runtime cache, which hv.efi must leave intact:
 *     they are counted and named, and docs/security.md lists them as open.
 * It runs last: nothing needing boot services can follow it.
 */
#include "agent.h"

#define KEY_ATTR (EFI_VARIABLE_NON_VOLATILE | EFI_VARIABLE_BOOTSERVICE_ACCESS)

static EFI_GUID hv_key_guid = {
    0x6e1b2c4d, 0x7a3f, 0x4c8e, {0x9b, 0x51, 0x2d, 0x60, 0xe4, 0x17, 0xa8, 0x3c}};
static CHAR16 hv_key_name[] = L"HvKey";

static char needle[64]; /* the key, the one copy the scan skips */
static UINTN needle_len;
static uint8_t map_buf[64 * 1024];
static char conf[16 * 1024];

static int same(const volatile char *p, const char *q, UINTN n)
{
    for (UINTN i = 0; i < n; i++)
        if (p[i] != q[i])
            return 0;
    return 1;
}

static void wipe(void *p, UINTN n)
{
    volatile char *b = p;
    for (UINTN i = 0; i < n; i++)
        b[i] = 0;
}

/* hv.conf beside the agent (mkesp.sh puts both at the ESP's root). */
static int check_conf(struct agent *a, char *reason, size_t size)
{
    EFI_BOOT_SERVICES *bs = a->st->BootServices;
    EFI_GUID lip = LOADED_IMAGE_PROTOCOL, sfs = SIMPLE_FILE_SYSTEM_PROTOCOL;
    EFI_LOADED_IMAGE *li = NULL;
    EFI_FILE_IO_INTERFACE *fs = NULL;
    EFI_FILE_HANDLE root = NULL, f = NULL;
    if (bs->HandleProtocol(a->image, &lip, (VOID **)&li) != EFI_SUCCESS ||
        bs->HandleProtocol(li->DeviceHandle, &sfs, (VOID **)&fs) != EFI_SUCCESS ||
        fs->OpenVolume(fs, &root) != EFI_SUCCESS) {
        str_printf(reason, size, "cannot open the ESP");
        return -1;
    }
    EFI_STATUS st = root->Open(root, &f, L"\\hv.conf", EFI_FILE_MODE_READ, 0);
    if (st != EFI_SUCCESS) {
        root->Close(root);
        str_printf(reason, size, "cannot open hv.conf: status 0x%lx", (UINT64)st);
        return -1;
    }
    UINTN n = sizeof(conf) - 1;
    st = f->Read(f, &n, conf);
    f->Close(f);
    root->Close(root);
    if (st != EFI_SUCCESS) {
        str_printf(reason, size, "cannot read hv.conf: status 0x%lx", (UINT64)st);
        return -1;
    }
    conf[n] = '\0';
    int has_value = 0, key_lines = 0;
    for (UINTN i = 0; i + needle_len <= n; i++)
        has_value |= same(conf + i, needle, needle_len);
    for (UINTN i = 0; i < n;) {
        UINTN j = i;
        while (j < n && (conf[j] == ' ' || conf[j] == '\t'))
            j++;
        if (j + 3 <= n && conf[j] == 'k' && conf[j + 1] == 'e' && conf[j + 2] == 'y') {
            UINTN k = j + 3;
            while (k < n && (conf[k] == ' ' || conf[k] == '\t'))
                k++;
            key_lines += k < n && conf[k] == '=';
        }
        while (i < n && conf[i] != '\n')
            i++;
        i++;
    }
    wipe(conf, sizeof(conf));
    AGENT_LOG("secret: hv.conf has %lu bytes, %d key line(s), the key %s", (UINT64)n, key_lines,
              has_value ? "PRESENT" : "absent");
    if (key_lines || has_value) {
        str_printf(reason, size, "hv.conf still holds the key");
        return -1;
    }
    return 0;
}

static int check_boot_variable(struct agent *a, char *reason, size_t size)
{
    char v[64];
    UINT32 attr = 0;
    UINTN n = sizeof(v);
    EFI_STATUS st = a->st->RuntimeServices->GetVariable(hv_key_name, &hv_key_guid, &attr, &n, v);
    int ok = st == EFI_SUCCESS && n == needle_len && same(v, needle, n);
    wipe(v, sizeof(v));
    AGENT_LOG("secret: before ExitBootServices GetVariable(HvKey): status 0x%lx, attributes 0x%x, "
              "%lu bytes, %s",
              (UINT64)st, attr, (UINT64)n, ok ? "the key" : "not the key");
    if (!ok || attr != KEY_ATTR) {
        str_printf(reason, size, "HvKey before ExitBootServices: status 0x%lx attributes 0x%x",
                   (UINT64)st, attr);
        return -1;
    }
    return 0;
}

static EFI_STATUS exit_boot_services(struct agent *a, UINTN *map_size, UINTN *desc_size)
{
    EFI_BOOT_SERVICES *bs = a->st->BootServices;
    EFI_STATUS st = EFI_INVALID_PARAMETER;
    for (int tries = 0; tries < 4; tries++) {
        UINTN key = 0;
        UINT32 ver = 0;
        *map_size = sizeof(map_buf);
        st = bs->GetMemoryMap(map_size, (EFI_MEMORY_DESCRIPTOR *)map_buf, &key, desc_size, &ver);
        if (st != EFI_SUCCESS)
            return st;
        st = bs->ExitBootServices(a->image, key);
        if (st == EFI_SUCCESS)
            return st;
    }
    return st;
}

static int scannable(UINT32 type)
{
    return type != EfiMemoryMappedIO && type != EfiMemoryMappedIOPortSpace &&
           type != EfiUnusableMemory;
}

enum verdict probe_secret(struct agent *a, char *reason, size_t size)
{
    if (!a->opt.secret[0]) {
        str_printf(reason, size, "needs secret=KEY-REVERSED");
        return PROBE_SKIP;
    }
    UINTN n = 0;
    while (a->opt.secret[n])
        n++;
    for (UINTN i = 0; i < n; i++)
        needle[i] = a->opt.secret[n - 1 - i];
    needle_len = n;
    if (n < 8) {
        str_printf(reason, size, "the key must have at least 8 characters for the scan");
        return PROBE_FAIL;
    }
    if (check_conf(a, reason, size) || check_boot_variable(a, reason, size))
        return PROBE_FAIL;

    UINTN map_size = 0, desc_size = 0;
    EFI_STATUS st = exit_boot_services(a, &map_size, &desc_size);
    if (st != EFI_SUCCESS) {
        str_printf(reason, size, "ExitBootServices: status 0x%lx", (UINT64)st);
        return PROBE_FAIL;
    }
    /* From here on: runtime services, port I/O and memory only. */
    char v[64];
    UINT32 attr = 0;
    UINTN vn = sizeof(v);
    st = a->st->RuntimeServices->GetVariable(hv_key_name, &hv_key_guid, &attr, &vn, v);
    wipe(v, sizeof(v));
    AGENT_LOG("secret: after ExitBootServices GetVariable(HvKey): status 0x%lx%s", (UINT64)st,
              st == EFI_NOT_FOUND ? " (EFI_NOT_FOUND)" : "");
    if (st != EFI_NOT_FOUND) {
        str_printf(reason, size, "HvKey after ExitBootServices: status 0x%lx", (UINT64)st);
        return PROBE_FAIL;
    }

    /* The scan: every 8-byte word is tested for the key's first byte at once. */
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    const uint64_t pat = ones * (uint8_t)needle[0];
    uint64_t scanned = 0, found = 0, in_rt = 0;
    for (UINTN off = 0; off + desc_size <= map_size; off += desc_size) {
        EFI_MEMORY_DESCRIPTOR *d = (EFI_MEMORY_DESCRIPTOR *)(map_buf + off);
        if (!scannable(d->Type))
            continue;
        uint64_t base = d->PhysicalStart, end = base + d->NumberOfPages * 4096;
        scanned += end - base;
        for (uint64_t p = base; p < end; p += 8) {
            uint64_t x = *(volatile uint64_t *)(uintptr_t)p ^ pat;
            if (!((x - ones) & ~x & highs))
                continue;
            for (unsigned b = 0; b < 8; b++) {
                uint64_t at = p + b;
                if (at + needle_len > end || (char *)(uintptr_t)at == needle)
                    continue;
                if (!same((const volatile char *)(uintptr_t)at, needle, needle_len))
                    continue;
                int rt = d->Type == EfiRuntimeServicesData || d->Type == EfiRuntimeServicesCode;
                char ctx[17];
                for (unsigned k = 0; k < 16; k++) {
                    char c = at >= base + 16 - k ? *(volatile char *)(uintptr_t)(at - 16 + k) : 0;
                    ctx[k] = c >= 0x20 && c < 0x7f ? c : '.';
                }
                ctx[16] = '\0';
                if (rt)
                    in_rt++;
                else
                    found++;
                if (in_rt + found <= 8)
                    AGENT_LOG("secret: the key at 0x%lx (memory type %u%s), after \"%s\"", at,
                              d->Type, rt ? ": runtime services" : "", ctx);
            }
        }
    }
    wipe(needle, sizeof(needle));
    AGENT_LOG("secret: scanned %lu MiB of the memory map: the key found %lu time(s) outside "
              "runtime-services memory, %lu time(s) in it",
              scanned >> 20, found, in_rt);
    if (found) {
        str_printf(reason, size, "the key is readable in guest memory (%lu copies)", found);
        return PROBE_FAIL;
    }
    return PROBE_PASS;
}
