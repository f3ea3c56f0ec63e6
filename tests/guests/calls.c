/* Calls and returns in every shape a return-address predictor must survive (vmrun
 * --return-prediction makes guest calls host calls): deep recursion past the host stack
 * budget, mutual recursion, one function returning to alternating call sites, calls through
 * function pointers, a longjmp out of deep recursion (host frames left behind), a callee
 * that returns somewhere else than its caller's return site, and system calls made deep in
 * a call chain. Each part is made hot enough for the optimizing tier. */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

__attribute__((noinline)) static uint64_t depth_sum(uint64_t n) {
    if (n == 0)
        return 0;
    return n + depth_sum(n - 1) * 3 % 1000003;
}

__attribute__((noinline)) static int is_odd(unsigned n);
__attribute__((noinline)) static int is_even(unsigned n) { return n == 0 ? 1 : is_odd(n - 1); }
__attribute__((noinline)) static int is_odd(unsigned n) { return n == 0 ? 0 : is_even(n - 1); }

__attribute__((noinline)) static uint64_t mix(uint64_t a, uint64_t b) { return a * 31 + b; }

__attribute__((noinline)) static uint64_t twice(uint64_t x) { return x * 2 + 1; }
__attribute__((noinline)) static uint64_t thrice(uint64_t x) { return x * 3 + 2; }

static jmp_buf escape;

__attribute__((noinline)) static uint64_t dive(uint64_t n, uint64_t at) {
    if (n == at)
        longjmp(escape, (int)(n % 97) + 1);
    if (n > at)
        return 0;
    return dive(n + 1, at) + 1;
}

/* Returns to its caller's return site + 8 (skipping the `mov x0, #1` there), not to x30:
 * a return no predictor expects. */
uint64_t skip_return(void);
uint64_t call_skipper(void);
__asm__(".text\n"
        ".global skip_return\n"
        ".type skip_return, %function\n"
        "skip_return:\n"
        "    add x30, x30, #8\n"
        "    mov x0, #7\n"
        "    ret\n"
        ".global call_skipper\n"
        ".type call_skipper, %function\n"
        "call_skipper:\n"
        "    stp x29, x30, [sp, #-16]!\n"
        "    bl skip_return\n"
        "    mov x0, #1\n"
        "    mov x0, #1\n"
        "    add x0, x0, #100\n"
        "    ldp x29, x30, [sp], #16\n"
        "    ret\n");

__attribute__((noinline)) static void say_deep(int n, char c) {
    if (n > 0) {
        say_deep(n - 1, c);
        return;
    }
    write(1, &c, 1);
}

int main(void) {
    /* Far deeper than the host stack budget for host calls (thousands of frames). */
    uint64_t deep = 0;
    for (int r = 0; r < 20; r++)
        deep += depth_sum(50000 + r);
    printf("deep recursion: %llu\n", (unsigned long long)deep);

    int parity = 0;
    for (unsigned r = 0; r < 200; r++)
        parity += is_even(1000 + r);
    printf("mutual recursion: %d\n", parity);

    /* One callee, two call sites taken in turn. */
    uint64_t m = 0;
    for (uint64_t i = 0; i < 200000; i++) {
        m = mix(m, i);
        if (i & 1)
            m = mix(m, i >> 1) ^ 5;
    }
    printf("alternating call sites: %llu\n", (unsigned long long)m);

    uint64_t (*fs[2])(uint64_t) = {twice, thrice};
    uint64_t f = 1;
    for (int i = 0; i < 100000; i++)
        f = fs[(i * 7) % 3 == 1](f) % 1000000007;
    printf("calls through pointers: %llu\n", (unsigned long long)f);

    uint64_t jumps = 0;
    for (int r = 0; r < 300; r++) {
        int v = setjmp(escape);
        if (v == 0)
            dive(0, 200 + r * 7);
        jumps += v;
    }
    printf("longjmp out of recursion: %llu\n", (unsigned long long)jumps);

    uint64_t skipped = 0;
    for (int i = 0; i < 50000; i++)
        skipped += call_skipper();
    printf("returns elsewhere: %llu\n", (unsigned long long)skipped);

    for (int i = 0; i < 40; i++)
        say_deep(300 + i, (char)('a' + i % 26));
    printf("\nsystem calls deep in a call chain: done\n");
    return 0;
}
