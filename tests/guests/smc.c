/* Guests that write machine code and run it, then change it and run it again: the
 * translator must notice the writes (and mprotect/munmap/mmap of code pages) under every
 * tier, including code that has become hot and was compiled by the optimizing JIT. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

typedef int64_t (*fn_t)(int64_t);

/* add x0, x0, #imm ; ret */
static void emit_add(uint32_t *code, unsigned imm) {
    code[0] = 0x91000000u | (imm << 10); /* add x0, x0, #imm */
    code[1] = 0xd65f03c0u;               /* ret */
    __builtin___clear_cache((char *)code, (char *)(code + 2));
}

/* A small loop: x1 = 0; repeat x0 times: x1 += k; return x1 */
static void emit_loop(uint32_t *code, unsigned k) {
    uint32_t w[] = {
        0xd2800001u,                /* mov x1, #0 */
        0xb4000080u,                /* cbz x0, +16 */
        0x91000021u | (k << 10),    /* add x1, x1, #k */
        0xd1000400u,                /* sub x0, x0, #1 */
        0xb5ffffc0u,                /* cbnz x0, -8 */
        0xaa0103e0u,                /* mov x0, x1 */
        0xd65f03c0u,                /* ret */
    };
    memcpy(code, w, sizeof w);
    __builtin___clear_cache((char *)code, (char *)(code + 7));
}

int main(void) {
    uint32_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) { perror("mmap"); return 1; }
    fn_t f = (fn_t)page;

    emit_add(page, 1);
    printf("add 1: %lld\n", (long long)f(41));
    /* Make it hot so the optimizing tier compiles it, then change it. */
    int64_t s = 0;
    for (int i = 0; i < 5000; i++) s += f(i);
    printf("hot sum: %lld\n", (long long)s);
    for (unsigned k = 2; k < 40; k += 7) {
        emit_add(page, k);
        s = 0;
        for (int i = 0; i < 2000; i++) s += f(i);
        printf("add %u: f(41) = %lld, sum %lld\n", k, (long long)f(41), (long long)s);
    }

    /* A loop written into memory, executed hot, rewritten with another constant. */
    uint32_t *loop = page + 64;
    fn_t g = (fn_t)loop;
    for (unsigned k = 1; k <= 4; k++) {
        emit_loop(loop, k);
        s = 0;
        for (int i = 0; i < 300; i++) s += g(i);
        printf("loop k=%u: g(1000) = %lld, sum %lld\n", k, (long long)g(1000), (long long)s);
    }

    /* W^X style: RW while writing, RX while running. */
    if (mprotect(page, 4096, PROT_READ | PROT_WRITE)) { perror("mprotect"); return 1; }
    emit_add(page, 100);
    if (mprotect(page, 4096, PROT_READ | PROT_EXEC)) { perror("mprotect"); return 1; }
    printf("after mprotect: %lld\n", (long long)f(1));

    /* Unmap and map new code at the same address. */
    munmap(page, 4096);
    uint32_t *again = mmap(page, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (again != page) { printf("mmap moved\n"); return 1; }
    emit_add(again, 7);
    printf("after remap: %lld\n", (long long)f(1));
    return 0;
}
