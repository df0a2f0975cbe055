/*
 * vtd_regs.h - remapping unit registers and table entry bits (Intel VT-d
 * specification 3.x, 10.4 "Register Descriptions", 9.1 "Root Entry", 9.3
 * "Context Entry").  Private to vtd/.
 */
#ifndef HV_VTD_REGS_H
#define HV_VTD_REGS_H

#define VTD_REG_VER    0x00
#define VTD_REG_CAP    0x08
#define VTD_REG_ECAP   0x10
#define VTD_REG_GCMD   0x18
#define VTD_REG_GSTS   0x1c
#define VTD_REG_RTADDR 0x20
#define VTD_REG_CCMD   0x28
#define VTD_REG_FSTS   0x34
#define VTD_REG_FECTL  0x38
#define VTD_REG_PMEN   0x64

#define VTD_CAP_ND(c)    ((unsigned)((c)&7))               /* 2^(4 + 2 * ND) domains */
#define VTD_CAP_RWBF     (1ull << 4)                       /* write buffer flush required */
#define VTD_CAP_PLMR     (1ull << 5)                       /* protected low-memory region */
#define VTD_CAP_PHMR     (1ull << 6)                       /* protected high-memory region */
#define VTD_CAP_CM       (1ull << 7)                       /* caching mode: not-present cached */
#define VTD_CAP_SAGAW(c) ((unsigned)(((c) >> 8) & 0x1f))   /* bit 1: 3-level, bit 2: 4-level */
#define VTD_CAP_MGAW(c)  ((unsigned)(((c) >> 16) & 0x3f))  /* max guest address width - 1 */
#define VTD_CAP_FRO(c)   ((unsigned)(((c) >> 24) & 0x3ff)) /* fault records at FRO * 16 */
#define VTD_CAP_SLLPS(c) ((unsigned)(((c) >> 34) & 0xf))   /* bit 0: 2 MiB pages */
#define VTD_CAP_NFR(c)   ((unsigned)(((c) >> 40) & 0xff) + 1)

#define VTD_ECAP_C      (1ull << 0)                      /* page walks snoop the CPU caches */
#define VTD_ECAP_IRO(e) ((unsigned)(((e) >> 8) & 0x3ff)) /* IOTLB registers at IRO * 16 */

#define VTD_GCMD_TE   (1u << 31)
#define VTD_GCMD_SRTP (1u << 30)
#define VTD_GCMD_WBF  (1u << 27)
#define VTD_GCMD_QIE  (1u << 26)
/* GSTS bits that reflect a persistent command (TE, EAFL, QIE, IRE, CFI). */
#define VTD_GSTS_PERSIST 0x96ffffffu
#define VTD_GSTS_TES     (1u << 31)
#define VTD_GSTS_RTPS    (1u << 30)
#define VTD_GSTS_WBFS    (1u << 27)
#define VTD_GSTS_QIES    (1u << 26)

#define VTD_CCMD_ICC         (1ull << 63)
#define VTD_CCMD_CIRG_GLOBAL (1ull << 61)

#define VTD_IOTLB_REG         8 /* after the IVA register at IRO * 16 */
#define VTD_IOTLB_IVT         (1ull << 63)
#define VTD_IOTLB_IIRG_GLOBAL (1ull << 60)
#define VTD_IOTLB_IIRG_DOMAIN (2ull << 60)
#define VTD_IOTLB_DR          (1ull << 49)
#define VTD_IOTLB_DW          (1ull << 48)
#define VTD_IOTLB_DID(d)      ((uint64_t)(d) << 32)

#define VTD_FSTS_PFO (1u << 0)
#define VTD_FSTS_PPF (1u << 1)

#define VTD_FECTL_IM (1u << 31)

#define VTD_PMEN_EPM (1u << 31)
#define VTD_PMEN_PRS (1u << 0)

#define VTD_FRCD_F       (1ull << 63) /* in the upper quadword */
#define VTD_FRCD_T_READ  (1ull << 62)
#define VTD_FRCD_FR(h)   ((uint8_t)((h) >> 32))
#define VTD_FRCD_SID(h)  ((uint16_t)(h))
#define VTD_FRCD_FI_MASK 0xfffffffffffff000ull

/* Root entry, low quadword: present, context table pointer. */
#define VTD_ROOT_P 1ull
/* Context entry: low quadword P, TT = 00 (untranslated via second level). */
#define VTD_CTX_P      1ull
#define VTD_CTX_AW(l)  ((uint64_t)((l)-2)) /* 3 levels: 1, 4 levels: 2 */
#define VTD_CTX_DID(d) ((uint64_t)(d) << 8)

#endif
