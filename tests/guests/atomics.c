/* Atomics and exclusives in one thread: C11 atomics (fetch_add/sub/and/or/xor, exchange,
 * compare_exchange strong and weak, on 8/16/32/64-bit),
 * memory fences, and explicit LDXR/STXR / LDAXR/STLXR and LDXP/STXP (128-bit) loops on AArch64. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

static _Atomic uint8_t a8 = 250;
static _Atomic uint16_t a16 = 65530;
static _Atomic uint32_t a32 = 0xfffffff0u;
static _Atomic uint64_t a64 = 0x7ffffffffffffff0ULL;
static _Atomic int64_t s64 = -5;

int main(void) {
    uint64_t h = 0;
    for (int i = 0; i < 40; i++) {
        h = h * 31 + atomic_fetch_add(&a8, 3);
        h = h * 31 + atomic_fetch_sub(&a16, 7);
        h = h * 31 + atomic_fetch_xor(&a32, 0x5a5a5a5au + i);
        h = h * 31 + atomic_fetch_or(&a64, 1ULL << (i % 64));
        h = h * 31 + (uint64_t)atomic_fetch_and(&s64, ~(int64_t)(1 << (i % 8)));
        h = h * 31 + atomic_exchange(&a32, (uint32_t)i * 0x01010101u);
        uint64_t expect = atomic_load(&a64);
        int ok = atomic_compare_exchange_strong(&a64, &expect, expect + 0x1000);
        h = h * 31 + ok;
        expect = 12345;
        ok = atomic_compare_exchange_strong(&a64, &expect, 0);
        h = h * 31 + ok + expect;
        uint16_t e16 = atomic_load(&a16);
        while (!atomic_compare_exchange_weak(&a16, &e16, (uint16_t)(e16 * 3 + 1))) {
        }
        atomic_thread_fence(memory_order_seq_cst);
    }
    printf("atomics: a8 %u a16 %u a32 %08x a64 %016llx s64 %lld hash %016llx\n", atomic_load(&a8), atomic_load(&a16),
           atomic_load(&a32), (unsigned long long)atomic_load(&a64), (long long)atomic_load(&s64), (unsigned long long)h);

#ifdef __aarch64__
    uint64_t mem = 100, old, tmp;
    uint32_t status, fails = 0;
    for (int i = 0; i < 50; i++) {
        do {
            __asm__ volatile("ldaxr %0, [%3]\n add %1, %0, %4\n stlxr %w2, %1, [%3]"
                             : "=&r"(old), "=&r"(tmp), "=&r"(status)
                             : "r"(&mem), "r"((uint64_t)i)
                             : "memory");
            fails += status != 0;
        } while (status);
    }
    uint32_t w = 7;
    uint32_t wold;
    do {
        __asm__ volatile("ldxr %w0, [%2]\n stxr %w1, %w3, [%2]" : "=&r"(wold), "=&r"(status) : "r"(&w), "r"(wold * 0 + 99) : "memory");
    } while (status);
    /* A store-exclusive without a matching load-exclusive must fail (after clrex). */
    __asm__ volatile("ldxr %w0, [%2]\n clrex\n stxr %w1, %w0, [%2]" : "=&r"(wold), "=&r"(status) : "r"(&w) : "memory");
    printf("exclusives: mem %llu w %u stxr-after-clrex status %u\n", (unsigned long long)mem, w, status);
    uint64_t pair[2] __attribute__((aligned(16))) = {1, 2};
    uint64_t lo, hi;
    do {
        __asm__ volatile("ldxp %0, %1, [%3]\n add %0, %0, #10\n add %1, %1, #20\n stxp %w2, %0, %1, [%3]"
                         : "=&r"(lo), "=&r"(hi), "=&r"(status)
                         : "r"(pair)
                         : "memory");
    } while (status);
    printf("ldxp/stxp: %llu %llu\n", (unsigned long long)pair[0], (unsigned long long)pair[1]);
#endif
    return 0;
}
