/*
 * conf_file.c - finds hv.conf in hv.efi's directory, parses it, and starts
 * the chained loader (see boot.h).
 */
#include <efi.h>
#include <efilib.h>

#include "boot.h"
#include "log.h"

#define CONF_MAX (64 * 1024)

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

EFI_STATUS boot_load_config(EFI_HANDLE image, struct hv_config *cfg)
{
    EFI_LOADED_IMAGE *li = loaded_image(image);
    if (!li)
        return EFI_LOAD_ERROR;
    EFI_FILE_HANDLE root = LibOpenRoot(li->DeviceHandle);
    if (!root) {
        log_warn("cannot open hv.efi's volume: using the default configuration");
        return EFI_SUCCESS;
    }
    CHAR16 *path = sibling_path(li, L"hv.conf");
    EFI_FILE_HANDLE f = NULL;
    EFI_STATUS s = path ? root->Open(root, &f, path, EFI_FILE_MODE_READ, 0) : EFI_NOT_FOUND;
    if (path)
        FreePool(path);
    if (s == EFI_NOT_FOUND) {
        root->Close(root);
        log_info("no hv.conf beside hv.efi: using the default configuration");
        return EFI_SUCCESS;
    }
    if (EFI_ERROR(s)) {
        root->Close(root);
        log_error("cannot open hv.conf: status 0x%llx", (unsigned long long)s);
        return s;
    }
    char *buf = AllocatePool(CONF_MAX + 1);
    UINTN n = CONF_MAX + 1;
    s = buf ? f->Read(f, &n, buf) : EFI_OUT_OF_RESOURCES;
    f->Close(f);
    root->Close(root);
    if (EFI_ERROR(s)) {
        log_error("cannot read hv.conf: status 0x%llx", (unsigned long long)s);
        if (buf)
            FreePool(buf);
        return s;
    }
    if (n > CONF_MAX) {
        log_error("hv.conf is larger than %u bytes", CONF_MAX);
        FreePool(buf);
        return EFI_INVALID_PARAMETER;
    }
    int errors = config_parse(cfg, buf, n, conf_error, NULL);
    FreePool(buf);
    if (errors)
        return EFI_INVALID_PARAMETER;
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
