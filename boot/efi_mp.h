/*
 * efi_mp.h - EFI_MP_SERVICES_PROTOCOL (UEFI PI spec, volume 2, 13.4), which
 * gnu-efi 3.0.15 does not declare.  Used by the loader (CPU list,
 * starting the hypervisor on every AP) and the guest test agent.  Include
 * after <efi.h>.
 */
#ifndef HV_EFI_MP_H
#define HV_EFI_MP_H

#define EFI_MP_SERVICES_PROTOCOL_GUID                                                              \
    {                                                                                              \
        0x3fdda605, 0xa76e, 0x4f46,                                                                \
        {                                                                                          \
            0xad, 0x29, 0x12, 0xf4, 0x53, 0x1b, 0x3d, 0x08                                         \
        }                                                                                          \
    }

#define PROCESSOR_AS_BSP_BIT        0x1
#define PROCESSOR_ENABLED_BIT       0x2
#define PROCESSOR_HEALTH_STATUS_BIT 0x4

typedef struct {
    UINT64 ProcessorId; /* the APIC ID */
    UINT32 StatusFlag;
    struct {
        UINT32 Package, Core, Thread;
    } Location;
    UINT8 ExtendedInformation[24]; /* PI 1.7+: filled only on request; room for it */
} EFI_MP_PROCESSOR_INFORMATION;

typedef VOID(EFIAPI *EFI_AP_PROCEDURE)(VOID *Arg);

typedef struct _EFI_MP_SERVICES_PROTOCOL EFI_MP_SERVICES_PROTOCOL;

struct _EFI_MP_SERVICES_PROTOCOL {
    EFI_STATUS(EFIAPI *GetNumberOfProcessors)
    (EFI_MP_SERVICES_PROTOCOL *This, UINTN *NumberOfProcessors, UINTN *NumberOfEnabled);
    EFI_STATUS(EFIAPI *GetProcessorInfo)
    (EFI_MP_SERVICES_PROTOCOL *This, UINTN ProcessorNumber, EFI_MP_PROCESSOR_INFORMATION *Info);
    EFI_STATUS(EFIAPI *StartupAllAPs)
    (EFI_MP_SERVICES_PROTOCOL *This, EFI_AP_PROCEDURE Procedure, BOOLEAN SingleThread,
     EFI_EVENT WaitEvent, UINTN TimeoutInMicroSeconds, VOID *Arg, UINTN **FailedCpuList);
    EFI_STATUS(EFIAPI *StartupThisAP)
    (EFI_MP_SERVICES_PROTOCOL *This, EFI_AP_PROCEDURE Procedure, UINTN ProcessorNumber,
     EFI_EVENT WaitEvent, UINTN TimeoutInMicroseconds, VOID *Arg, BOOLEAN *Finished);
    EFI_STATUS(EFIAPI *SwitchBSP)
    (EFI_MP_SERVICES_PROTOCOL *This, UINTN ProcessorNumber, BOOLEAN EnableOldBSP);
    EFI_STATUS(EFIAPI *EnableDisableAP)
    (EFI_MP_SERVICES_PROTOCOL *This, UINTN ProcessorNumber, BOOLEAN EnableAP, UINT32 *HealthFlag);
    EFI_STATUS(EFIAPI *WhoAmI)(EFI_MP_SERVICES_PROTOCOL *This, UINTN *ProcessorNumber);
};

#endif
