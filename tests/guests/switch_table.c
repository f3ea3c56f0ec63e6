/* A switch through a jump table in read-only data (the shape gcc emits: bound check, ldrh of
 * the entry, adr of the base, add, br), run hot, then the table is made writable and
 * rewritten: translations that folded the table's contents into their code must notice
 * (AOT images and every JIT tier). */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

extern uint16_t sw_table[4];
int64_t sw(int64_t i);

__asm__(".text\n"
        ".global sw\n"
        ".type sw, %function\n"
        "sw:\n"
        "    cmp x0, #3\n"
        "    b.hi 9f\n"
        "    adrp x1, sw_table\n"
        "    add x1, x1, :lo12:sw_table\n"
        "    ldrh w0, [x1, w0, uxtw #1]\n"
        "    adr x1, 1f\n"
        "    add x0, x1, w0, sxth #2\n"
        "    br x0\n"
        "1:  mov x0, #10\n"
        "    ret\n"
        "2:  mov x0, #20\n"
        "    ret\n"
        "3:  mov x0, #30\n"
        "    ret\n"
        "4:  mov x0, #40\n"
        "    ret\n"
        "9:  mov x0, #-1\n"
        "    ret\n"
        ".size sw, . - sw\n"
        ".section .rodata\n"
        ".balign 8\n"
        ".global sw_table\n"
        "sw_table:\n"
        "    .hword (1b - 1b) / 4, (2b - 1b) / 4, (3b - 1b) / 4, (4b - 1b) / 4\n"
        ".text\n");

static void show(const char *what) {
    int64_t sum = 0;
    /* Hot enough for the optimizing tier. */
    for (int k = 0; k < 20000; k++)
        sum += sw(k % 6);
    printf("%s: sw(0..5) = %lld %lld %lld %lld %lld %lld, sum %lld\n", what, (long long)sw(0),
           (long long)sw(1), (long long)sw(2), (long long)sw(3), (long long)sw(4), (long long)sw(5),
           (long long)sum);
}

int main(void) {
    show("table");
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t at = (uintptr_t)sw_table & ~(uintptr_t)(page - 1);
    if (mprotect((void *)at, page, PROT_READ | PROT_WRITE | PROT_EXEC) != 0) {
        perror("mprotect");
        return 1;
    }
    uint16_t t = sw_table[0];
    sw_table[0] = sw_table[3];
    sw_table[3] = t;
    show("swapped");
    sw_table[1] = sw_table[2];
    show("2 as 3");
    return 0;
}
