/*
 * globals.c - the core's shared state every layer reads: the boot info, the
 * page pool of the reserved region and the per-CPU tables (indexed like
 * boot_info.cpus).  The composition root (init/main.c) fills them on the
 * BSP before any other CPU runs core code.
 */
#include "core.h"

struct boot_info *g_bi;
struct page_pool g_pages;
struct cpu *g_cpus[BI_MAX_CPUS];
