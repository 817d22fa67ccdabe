/* cpu.c — see cpu.h. */
#include "cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <stdint.h>

/* XCR0: which register states the OS saves (bits 1-2: SSE/AVX; 5-7: AVX-512). */
static uint64_t xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

bool es_cpu_has(es_cpu_feature f) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    const bool osxsave = (c >> 27) & 1;
    const bool avx_os = osxsave && (xcr0() & 0x6) == 0x6;
    const bool avx512_os = avx_os && (xcr0() & 0xe0) == 0xe0;
    const bool fma = (c >> 12) & 1, f16c = (c >> 29) & 1, avx = (c >> 28) & 1;
    unsigned a7 = 0, b7 = 0, c7 = 0, d7 = 0, a71 = 0, b71 = 0, c71 = 0, d71 = 0;
    __get_cpuid_count(7, 0, &a7, &b7, &c7, &d7);
    __get_cpuid_count(7, 1, &a71, &b71, &c71, &d71);
    switch (f) {
    case ES_CPU_AVX2: return avx && avx_os && ((b7 >> 5) & 1);
    case ES_CPU_FMA: return avx_os && fma;
    case ES_CPU_F16C: return avx_os && f16c;
    case ES_CPU_AVXVNNI: return avx_os && ((a71 >> 4) & 1);
    case ES_CPU_AVX512F: return avx512_os && ((b7 >> 16) & 1);
    case ES_CPU_AVX512BW: return avx512_os && ((b7 >> 30) & 1);
    case ES_CPU_AVX512VNNI: return avx512_os && ((c7 >> 11) & 1);
    }
    return false;
}
#else
bool es_cpu_has(es_cpu_feature f) {
    (void)f;
    return false;
}
#endif
