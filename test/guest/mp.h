/*
 * mp: EFI_MP_SERVICES_PROTOCOL (UEFI PI specification, volume 2, "MP Services
 * Protocol"), declared here because gnu-efi 3.0.15 does not ship it.
 */
#ifndef AGENT_MP_H
#define AGENT_MP_H

#include <efi.h>

#define AGENT_MP_SERVICES_GUID                                                                     \
    {                                                                                              \
        0x3fdda605, 0xa76e, 0x4f46,                                                                \
        {                                                                                          \
            0xad, 0x29, 0x12, 0xf4, 0x53, 0x1b, 0x3d, 0x08                                         \
        }                                                                                          \
    }

#define MP_PROCESSOR_AS_BSP  0x1
#define MP_PROCESSOR_ENABLED 0x2
#define MP_PROCESSOR_HEALTHY 0x4

struct mp_cpu_location {
    UINT32 package, core, thread;
};

/*
 * PI 1.7 appended ExtendedInformation (six UINT32s); firmware fills it only
 * when asked with bit 24 of the processor number, but the buffer is sized for
 * it so that a firmware that writes it anyway cannot overrun ours.
 */
struct mp_processor_info {
    UINT64 processor_id; /* the APIC ID */
    UINT32 status_flag;
    struct mp_cpu_location location;
    UINT32 extended[6];
};

typedef VOID(EFIAPI *mp_procedure)(VOID *arg);

struct mp_services;
struct mp_services {
    EFI_STATUS(EFIAPI *get_number_of_processors)
    (struct mp_services *self, UINTN *count, UINTN *enabled);
    EFI_STATUS(EFIAPI *get_processor_info)
    (struct mp_services *self, UINTN cpu, struct mp_processor_info *info);
    EFI_STATUS(EFIAPI *startup_all_aps)
    (struct mp_services *self, mp_procedure proc, BOOLEAN single_thread, EFI_EVENT wait_event,
     UINTN timeout_us, VOID *arg, UINTN **failed_cpus);
    EFI_STATUS(EFIAPI *startup_this_ap)
    (struct mp_services *self, mp_procedure proc, UINTN cpu, EFI_EVENT wait_event, UINTN timeout_us,
     VOID *arg, BOOLEAN *finished);
    EFI_STATUS(EFIAPI *switch_bsp)(struct mp_services *self, UINTN cpu, BOOLEAN enable_old_bsp);
    EFI_STATUS(EFIAPI *enable_disable_ap)
    (struct mp_services *self, UINTN cpu, BOOLEAN enable, UINT32 *health);
    EFI_STATUS(EFIAPI *who_am_i)(struct mp_services *self, UINTN *cpu);
};

#endif
