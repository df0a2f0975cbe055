/*
 * core_status.h - what core_start() returns to the loader.
 */
#ifndef HV_CORE_STATUS_H
#define HV_CORE_STATUS_H

#define CORE_OK            0
#define CORE_ERR_BOOT_INFO 1 /* loader and core disagree on the boot info */
#define CORE_ERR_NO_MEMORY 2 /* the reserved region is too small */
#define CORE_ERR_SELF_TEST 3 /* the core's own tables did not work */
#define CORE_ERR_VMX       4 /* VT-x refused (named on the log) or a launch failed */
#define CORE_ERR_HIDE      5 /* the dedicated NIC could not be hidden from the guest */

/* Second argument of core_start: what the call is for. */
#define CORE_OP_INIT   0 /* BSP, once: set everything up, return to the loader */
#define CORE_OP_LAUNCH 1 /* every CPU: return to the loader as a guest (vmx/) */

static inline const char *core_status_name(unsigned long long s)
{
    switch (s) {
    case CORE_OK:
        return "ok";
    case CORE_ERR_BOOT_INFO:
        return "boot info rejected";
    case CORE_ERR_NO_MEMORY:
        return "reserved region too small";
    case CORE_ERR_SELF_TEST:
        return "self-test failed";
    case CORE_ERR_VMX:
        return "VT-x refused or launch failed";
    case CORE_ERR_HIDE:
        return "the NIC could not be hidden";
    default:
        return "unknown error";
    }
}

#endif
