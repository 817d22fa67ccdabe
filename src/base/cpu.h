/* cpu.h — x86 CPU feature detection with CPUID and XGETBV (so the same code builds
 * with gcc and clang, whose __builtin_cpu_supports names differ). Every answer is
 * false on other architectures. */
#ifndef ES_CPU_H
#define ES_CPU_H

#include <stdbool.h>

typedef enum es_cpu_feature {
    ES_CPU_AVX2,
    ES_CPU_FMA,
    ES_CPU_F16C,
    ES_CPU_AVXVNNI, /* AVX-VNNI (VEX-encoded vpdpbusd on 256-bit registers) */
    ES_CPU_AVX512F,
    ES_CPU_AVX512BW,
    ES_CPU_AVX512VNNI,
} es_cpu_feature;

/* Whether the CPU and the OS (saved register state) support a feature. Thread-safe. */
bool es_cpu_has(es_cpu_feature f);

#endif
