/* Heap and mapping system calls: many malloc/calloc/realloc/free of sizes from 1 byte to
 * several MiB (brk and mmap paths), posix_memalign, mmap/munmap/mremap/mprotect, and content
 * checks after every move. Prints counts and checksums only (no addresses). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static uint32_t rng = 7;
/* Blocks carry a pattern at every index below 256 and at every multiple of 4096 above. */
static void fill(unsigned char *p, size_t from, size_t to, unsigned s) {
    size_t i = from;
    for (; i < to && i < 256; i++) p[i] = (unsigned char)(s + i);
    for (i = (i + 4095) & ~(size_t)4095; i < to; i += 4096) p[i] = (unsigned char)(s + i);
}
static long check(const unsigned char *p, size_t to, unsigned s) {
    long bad = 0;
    size_t i = 0;
    for (; i < to && i < 256; i++) bad += p[i] != (unsigned char)(s + i);
    for (i = (i + 4095) & ~(size_t)4095; i < to; i += 4096) bad += p[i] != (unsigned char)(s + i);
    return bad;
}
static uint32_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 17; rng ^= rng << 5; return rng; }

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 5000;
    enum { SLOTS = 256 };
    static unsigned char *ptr[SLOTS];
    static size_t size[SLOTS];
    uint64_t sum = 0;
    long errors = 0, big = 0;
    for (int r = 0; r < rounds; r++) {
        unsigned s = rnd() % SLOTS;
        if (ptr[s]) {
            errors += check(ptr[s], size[s], s);
            sum += size[s];
            if (rnd() % 3 == 0) {
                size_t ns = rnd() % 3 == 0 ? (size_t)(rnd() % (1 << 21)) : (size_t)(rnd() % 600);
                unsigned char *p = realloc(ptr[s], ns ? ns : 1);
                if (!p) { errors++; continue; }
                size_t keep = ns < size[s] ? ns : size[s];
                errors += check(p, keep, s);
                fill(p, keep, ns, s);
                ptr[s] = p;
                size[s] = ns;
                continue;
            }
            free(ptr[s]);
            ptr[s] = NULL;
        } else {
            size_t n = rnd() % 16 == 0 ? (size_t)(rnd() % (4 << 20)) : (size_t)(rnd() % 300);
            big += n >= 128 * 1024;
            unsigned char *p = rnd() & 1 ? malloc(n) : calloc(1, n);
            if (!p && n) { errors++; continue; }
            fill(p, 0, n, s);
            ptr[s] = p;
            size[s] = n;
        }
    }
    for (unsigned s = 0; s < SLOTS; s++) free(ptr[s]);
    printf("malloc rounds %d: bytes checked %llu, large blocks %ld, errors %ld\n", rounds, (unsigned long long)sum, big, errors);

    void *al = NULL;
    int rc = posix_memalign(&al, 4096, 10000);
    printf("posix_memalign rc %d aligned %d\n", rc, ((uintptr_t)al & 4095) == 0);
    free(al);
    void *a2 = aligned_alloc(64, 640);
    printf("aligned_alloc aligned %d\n", ((uintptr_t)a2 & 63) == 0);
    free(a2);

    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *m = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("mmap ok %d zero-filled %d\n", m != MAP_FAILED, m[0] == 0 && m[4 * pg - 1] == 0);
    memset(m, 0xab, 4 * pg);
    unsigned char *m2 = mremap(m, 4 * pg, 64 * pg, MREMAP_MAYMOVE);
    printf("mremap ok %d kept %d new zero %d\n", m2 != MAP_FAILED, m2[4 * pg - 1] == 0xab, m2[64 * pg - 1] == 0);
    printf("munmap middle %d\n", munmap(m2 + 8 * pg, 8 * pg));
    printf("mprotect read-only %d\n", mprotect(m2, pg, PROT_READ));
    printf("read after mprotect %x\n", m2[10]);
    printf("munmap rest %d %d\n", munmap(m2, 8 * pg), munmap(m2 + 16 * pg, 48 * pg));
    void *fixed = mmap(NULL, pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("PROT_NONE map ok %d, unmap %d\n", fixed != MAP_FAILED, munmap(fixed, pg));
    printf("munmap unaligned: %d\n", munmap((char *)fixed + 1, pg));
    void *cur = sbrk(0);
    void *grown = sbrk(1 << 16);
    printf("sbrk grow ok %d, same start %d, shrink %d\n", grown != (void *)-1, grown == cur, sbrk(-(1 << 16)) != (void *)-1);
    return errors != 0;
}
