/* File-backed mmap as Linux does it: the file's pages are shared with the page cache (no
 * copy), bytes past the end of the file in its last page read as zero, a page wholly beyond
 * the end raises SIGBUS (BUS_ADRERR), MAP_SHARED writes reach the file, a mapping far larger
 * than the file costs nothing until touched, and mremap moves a file mapping with its
 * contents. Prints only facts that are the same under every correct emulator. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static sigjmp_buf env;
static volatile int bus_code;
static volatile void *bus_addr;

static void on_bus(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    bus_code = si->si_code;
    bus_addr = si->si_addr;
    siglongjmp(env, 1);
}

int main(void) {
    const long page = sysconf(_SC_PAGESIZE);
    char path[] = "/tmp/vmc-mmap-file-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    unlink(path);
    const char text[] = "hello, mapped file";
    if (write(fd, text, sizeof text - 1) != (ssize_t)(sizeof text - 1)) {
        perror("write");
        return 1;
    }

    /* Three pages of a 18-byte file: page 0 is the file (then zeros), pages 1-2 are beyond. */
    char *m = mmap(NULL, 3 * page, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    printf("page 0: \"%.*s\", byte 100 = %d\n", (int)(sizeof text - 1), m, m[100]);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_bus;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGBUS, &sa, NULL);
    if (sigsetjmp(env, 1) == 0) {
        volatile char c = m[page + 5];
        (void)c;
        printf("page 1: read without a signal (wrong)\n");
    } else {
        printf("page 1: SIGBUS, si_code %d, at offset %ld\n", bus_code,
               (long)((char *)bus_addr - m));
    }

    /* A shared writable mapping: a store reaches the file. */
    char *s = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (s == MAP_FAILED) {
        perror("mmap shared");
        return 1;
    }
    memcpy(s, "HELLO", 5);
    char back[6] = {0};
    pread(fd, back, 5, 0);
    printf("shared write seen by read(): %s\n", back);
    printf("private mapping sees it too: %.5s\n", m);

    /* Shared mapping of a read-only descriptor: PROT_WRITE is refused (EACCES). */
    int ro = open("/proc/self/exe", O_RDONLY);
    void *w = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0);
    printf("shared writable map of a read-only fd: %s\n",
           w == MAP_FAILED ? strerror(errno) : "mapped (wrong)");
    void *r = mmap(NULL, page, PROT_READ, MAP_SHARED, ro, 0);
    printf("shared read-only map of it: %s\n", r == MAP_FAILED ? strerror(errno) : "ok");
    if (r != MAP_FAILED) {
        printf("mprotect it writable: %s\n",
               mprotect(r, page, PROT_READ | PROT_WRITE) ? strerror(errno) : "ok (wrong)");
        printf("starts with ELF magic: %d\n", memcmp(r, "\177ELF", 4) == 0);
    }

    /* A large sparse file mapped whole: only the touched pages cost anything. */
    const off_t big = 1L << 30;
    if (ftruncate(fd, big) != 0) {
        perror("ftruncate");
        return 1;
    }
    char *g = mmap(NULL, big, PROT_READ, MAP_PRIVATE, fd, 0);
    if (g == MAP_FAILED) {
        perror("mmap 1 GiB");
        return 1;
    }
    printf("1 GiB map: first %.5s, last byte %d\n", g, g[big - 1]);

    /* Far more than the file (8 GiB of a 1 GiB file), read-only: fine until touched. */
    char *h = mmap(NULL, 8L << 30, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("8 GiB map of a 1 GiB file: %s\n", h == MAP_FAILED ? strerror(errno) : "ok");
    if (h != MAP_FAILED) {
        if (sigsetjmp(env, 1) == 0) {
            volatile char c = h[(4L << 30) + 7];
            (void)c;
            printf("beyond the file: read without a signal (wrong)\n");
        } else {
            printf("beyond the file: SIGBUS, si_code %d\n", bus_code);
        }
        munmap(h, 8L << 30);
    }

    /* mremap moves a file mapping with its contents. */
    char *moved = mremap(s, page, 4 * page, MREMAP_MAYMOVE);
    printf("mremap: %s, contents %.5s\n", moved == MAP_FAILED ? strerror(errno) : "ok",
           moved == MAP_FAILED ? "" : moved);

    munmap(g, big);
    munmap(m, 3 * page);
    close(fd);
    return 0;
}
