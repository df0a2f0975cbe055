/*
 * conf_file.c - finds hv.conf in hv.efi's directory, parses it, keeps the
 * key where the OS cannot read it, and starts the chained loader (see
 * boot.h).
 *
 * The key (docs/configuration.md, "The key"): a `key` line in hv.conf is
 * stored in the UEFI variable HvKey with boot-service access only
 * (NV|BS, no RT: after ExitBootServices GetVariable does not find it, UEFI
 * 2.x 8.2 Variable Services) and its line in hv.conf is overwritten in
 * place; a start whose hv.conf has no key reads the variable.  A key in
 * the file again replaces the variable (rotation).  If the variable cannot
 * be written the key stays in the file, said on COM1.  Every buffer that
 * held the file is wiped before it is freed.
 */
#include <efi.h>
#include <efilib.h>

#include "boot.h"
#include "log.h"

#define CONF_MAX (64 * 1024)
#define KEY_ATTR (EFI_VARIABLE_NON_VOLATILE | EFI_VARIABLE_BOOTSERVICE_ACCESS)

static EFI_GUID hv_key_guid = HV_KEY_VAR_GUID;
static CHAR16 hv_key_name[] = HV_KEY_VAR_NAME;

void boot_wipe(void *p, size_t n)
{
    volatile uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = 0;
}

static EFI_LOADED_IMAGE *loaded_image(EFI_HANDLE image)
{
    EFI_LOADED_IMAGE *li = NULL;
    if (BS->HandleProtocol(image, &LoadedImageProtocol, (void **)&li) != EFI_SUCCESS)
        return NULL;
    return li;
}

/* hv.efi's own path ("\EFI\hv\hv.efi") with the file name replaced by `name`. */
static CHAR16 *sibling_path(EFI_LOADED_IMAGE *li, const CHAR16 *name)
{
    CHAR16 *self = DevicePathToStr(li->FilePath);
    if (!self)
        return NULL;
    UINTN len = StrLen(self), cut = 0;
    for (UINTN i = 0; i < len; i++)
        if (self[i] == L'\\' || self[i] == L'/')
            cut = i + 1;
    UINTN nlen = StrLen(name);
    CHAR16 *p = AllocatePool((cut + nlen + 2) * sizeof(CHAR16));
    if (p) {
        UINTN k = 0;
        if (cut == 0)
            p[k++] = L'\\';
        for (UINTN i = 0; i < cut; i++)
            p[k++] = self[i] == L'/' ? L'\\' : self[i];
        for (UINTN i = 0; i < nlen; i++)
            p[k++] = name[i];
        p[k] = 0;
    }
    FreePool(self);
    return p;
}

static void conf_error(void *ctx, unsigned line, const char *msg, const char *what)
{
    (void)ctx;
    if (what && what[0])
        log_error("hv.conf:%u: %s ('%s')", line, msg, what);
    else
        log_error("hv.conf:%u: %s", line, msg);
}

/* A start without a key in hv.conf: the key of an earlier start, from HvKey. */
static EFI_STATUS key_from_variable(struct hv_config *cfg)
{
    char v[HV_CONF_STR];
    UINT32 attr = 0;
    UINTN n = sizeof(v);
    EFI_STATUS s = RT->GetVariable(hv_key_name, &hv_key_guid, &attr, &n, v);
    if (s == EFI_NOT_FOUND)
        return EFI_SUCCESS;
    bool ok = !EFI_ERROR(s) && n >= 1 && n < sizeof(v);
    for (UINTN i = 0; ok && i < n; i++)
        ok = (unsigned char)v[i] >= 0x20 && v[i] != 0x7f;
    /* Only a boot-service variable is ours: one with runtime access the OS could have
     * written (or read), so its key is nobody's secret. */
    if (ok && attr != KEY_ATTR) {
        boot_wipe(v, sizeof(v));
        log_error("refusing to start: the key variable HvKey has attributes 0x%x, not "
                  "NV|BS (0x%x): the OS can reach it",
                  (unsigned)attr, (unsigned)KEY_ATTR);
        return EFI_SECURITY_VIOLATION;
    }
    if (!ok) {
        boot_wipe(v, sizeof(v));
        log_error("refusing to start: the key variable HvKey cannot be read or is not 1 to 63 "
                  "printable characters (status 0x%llx, %llu bytes)",
                  (unsigned long long)s, (unsigned long long)n);
        return EFI_SECURITY_VIOLATION;
    }
    for (UINTN i = 0; i < n; i++)
        cfg->key[i] = v[i];
    cfg->key[n] = '\0';
    cfg->has_key = true;
    boot_wipe(v, sizeof(v));
    log_info("key: from the boot-service variable HvKey (hv.conf has none)");
    return EFI_SUCCESS;
}

/*
 * hv.conf had a key: store it in HvKey, then overwrite its line in the file
 * (same length, so no byte of it stays in the file's clusters).  The file
 * goes on working either way; what went wrong is said on COM1.
 */
static void key_to_variable(EFI_FILE_HANDLE root, const CHAR16 *path, struct hv_config *cfg,
                            char *buf, UINTN len)
{
    UINTN klen = 0;
    while (klen < sizeof(cfg->key) && cfg->key[klen])
        klen++;
    EFI_STATUS s = RT->SetVariable(hv_key_name, &hv_key_guid, KEY_ATTR, klen, cfg->key);
    if (EFI_ERROR(s)) {
        log_warn("key: cannot store it in a boot-service UEFI variable (status 0x%llx): it stays "
                 "in hv.conf, where the guest can read it",
                 (unsigned long long)s);
        return;
    }
    config_blank_key(buf, len);
    EFI_FILE_HANDLE f = NULL;
    s = root->Open(root, &f, (CHAR16 *)path, EFI_FILE_MODE_READ | EFI_FILE_MODE_WRITE, 0);
    if (!EFI_ERROR(s)) {
        UINTN n = len;
        s = f->SetPosition(f, 0);
        if (!EFI_ERROR(s))
            s = f->Write(f, &n, buf);
        if (!EFI_ERROR(s) && n != len)
            s = EFI_VOLUME_FULL;
        EFI_STATUS fl = f->Close(f); /* flushes */
        if (!EFI_ERROR(s))
            s = fl;
    }
    if (EFI_ERROR(s))
        log_error("key: stored in the boot-service variable HvKey, but hv.conf cannot be "
                  "rewritten (status 0x%llx): remove its key line by hand",
                  (unsigned long long)s);
    else
        log_info("key: moved from hv.conf into the boot-service variable HvKey (the OS cannot "
                 "read it); its line in hv.conf is a comment now");
}

EFI_STATUS boot_load_config(EFI_HANDLE image, struct hv_config *cfg)
{
    EFI_LOADED_IMAGE *li = loaded_image(image);
    if (!li)
        return EFI_LOAD_ERROR;
    EFI_FILE_HANDLE root = LibOpenRoot(li->DeviceHandle);
    if (!root) {
        log_warn("cannot open hv.efi's volume: using the default configuration");
        return key_from_variable(cfg);
    }
    CHAR16 *path = sibling_path(li, L"hv.conf");
    EFI_FILE_HANDLE f = NULL;
    EFI_STATUS s = path ? root->Open(root, &f, path, EFI_FILE_MODE_READ, 0) : EFI_NOT_FOUND;
    if (s == EFI_NOT_FOUND) {
        if (path)
            FreePool(path);
        root->Close(root);
        log_info("no hv.conf beside hv.efi: using the default configuration");
        return key_from_variable(cfg);
    }
    if (EFI_ERROR(s)) {
        FreePool(path);
        root->Close(root);
        log_error("cannot open hv.conf: status 0x%llx", (unsigned long long)s);
        return s;
    }
    char *buf = AllocatePool(CONF_MAX + 1);
    UINTN n = CONF_MAX + 1;
    s = buf ? f->Read(f, &n, buf) : EFI_OUT_OF_RESOURCES;
    f->Close(f);
    if (!EFI_ERROR(s) && n > CONF_MAX) {
        log_error("hv.conf is larger than %u bytes", CONF_MAX);
        s = EFI_INVALID_PARAMETER;
    } else if (EFI_ERROR(s)) {
        log_error("cannot read hv.conf: status 0x%llx", (unsigned long long)s);
    } else if (config_parse(cfg, buf, n, conf_error, NULL)) {
        s = EFI_INVALID_PARAMETER;
    } else if (cfg->has_key) {
        key_to_variable(root, path, cfg, buf, n);
    } else {
        s = key_from_variable(cfg);
    }
    if (buf) {
        boot_wipe(buf, CONF_MAX + 1);
        FreePool(buf);
    }
    FreePool(path);
    root->Close(root);
    if (EFI_ERROR(s))
        return s;
    log_info("hv.conf read: memory %u MiB, log level %s", cfg->memory_mib,
             config_log_level_name(cfg->log_level));
    return EFI_SUCCESS;
}

EFI_STATUS boot_chain(EFI_HANDLE image, const char *path)
{
    EFI_LOADED_IMAGE *li = loaded_image(image);
    if (!li)
        return EFI_LOAD_ERROR;
    CHAR16 wpath[130];
    UINTN i = 0;
    for (; path[i] && i < 129; i++)
        wpath[i] = path[i] == '/' ? L'\\' : (CHAR16)(unsigned char)path[i];
    wpath[i] = 0;
    EFI_DEVICE_PATH *dp = FileDevicePath(li->DeviceHandle, wpath);
    EFI_HANDLE next = NULL;
    EFI_STATUS s = dp ? BS->LoadImage(FALSE, image, dp, NULL, 0, &next) : EFI_OUT_OF_RESOURCES;
    if (dp)
        FreePool(dp);
    if (EFI_ERROR(s)) {
        log_error("chain: cannot load %s: status 0x%llx", path, (unsigned long long)s);
        return s;
    }
    log_info("chain: starting %s", path);
    s = BS->StartImage(next, NULL, NULL);
    log_info("chain: %s returned status 0x%llx", path, (unsigned long long)s);
    return s;
}
