// /proc containment probe: /proc/self/maps in Linux's format naming the guest only,
// /proc/self/mem writing a read-only page and refusing unmapped and out-of-space
// offsets (EIO), mem reached through a symlink and a /proc/self directory descriptor,
// /proc/self/fd listing only the guest's descriptors, dup3 beyond the limit, and an
// attacker's sweep of /proc/self/mem over every offset outside the guest's mappings.
// Prints only facts that are the same under qemu-user and vmrun.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static char maps[1 << 16];

static int read_maps(void) {
    int fd = open("/proc/self/maps", O_RDONLY);
    if (fd < 0) return -1;
    int n = 0, r;
    while ((r = read(fd, maps + n, sizeof maps - 1 - n)) > 0) n += r;
    maps[n] = 0;
    close(fd);
    return n;
}

// Every line: start-end perms offset dev inode [name].
static int lines_parse(void) {
    char *s = maps;
    while (*s) {
        char *nl = strchr(s, '\n');
        if (!nl) return 0;
        unsigned long a, b, off, ino;
        unsigned maj, min;
        char perms[5];
        int used = 0;
        if (sscanf(s, "%lx-%lx %4s %lx %x:%x %lu%n", &a, &b, perms, &off, &maj, &min, &ino, &used) != 7)
            return 0;
        if (a >= b || strlen(perms) != 4 || (perms[3] != 'p' && perms[3] != 's')) return 0;
        s = nl + 1;
    }
    return 1;
}

static const char *line_of(unsigned long addr, char *out, size_t size) {
    char *s = maps;
    while (*s) {
        char *nl = strchr(s, '\n');
        unsigned long a, b;
        if (sscanf(s, "%lx-%lx", &a, &b) == 2 && a <= addr && addr < b) {
            size_t n = nl - s < (long)size - 1 ? (size_t)(nl - s) : size - 1;
            memcpy(out, s, n);
            out[n] = 0;
            return out;
        }
        s = nl + 1;
    }
    return NULL;
}

static int mapped(unsigned long addr) {
    char l[512];
    return line_of(addr, l, sizeof l) != NULL;
}

static const int ro_value = 1234;

int main(int argc, char **argv) {
    if (read_maps() <= 0) {
        printf("maps: unreadable\n");
        return 1;
    }
    printf("maps lines parse: %d\n", lines_parse());
    const char *host[] = {"vmrun", "memfd", "[vsyscall]", "vmc-jit"};
    for (unsigned i = 0; i < sizeof host / sizeof *host; i++)
        printf("maps mentions %s: %d\n", host[i], strstr(maps, host[i]) != NULL);
    char line[512];
    const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    if (line_of((unsigned long)&main, line, sizeof line)) {
        printf("main: %s, named after the program: %d\n", strstr(line, " r-xp ") ? "r-xp" : "not r-xp",
               strlen(line) > strlen(base) && !strcmp(line + strlen(line) - strlen(base), base));
    } else {
        printf("main: not listed\n");
    }
    int local;
    printf("stack listed: %d\n", line_of((unsigned long)&local, line, sizeof line) && strstr(line, "[stack]"));

    // A read-only page written through /proc/self/mem.
    char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int mem = open("/proc/self/mem", O_RDWR);
    printf("mem open: %d\n", mem >= 0);
    long w = pwrite(mem, "sealed", 7, (off_t)(uintptr_t)ro);
    printf("write read-only page: %ld, reads back: %s\n", w, w == 7 && !strcmp(ro, "sealed") ? "yes" : "no");
    int v = 0;
    long r = pread(mem, &v, sizeof v, (off_t)(uintptr_t)&ro_value);
    printf("read const: %ld %d\n", r, v);
    // Unmapped: EIO both ways.
    munmap(ro, 4096);
    errno = 0;
    r = pread(mem, &v, sizeof v, (off_t)(uintptr_t)ro);
    printf("read unmapped: %ld %s\n", r, strerror(errno));
    errno = 0;
    r = pwrite(mem, &v, sizeof v, (off_t)(uintptr_t)ro);
    printf("write unmapped: %ld %s\n", r, strerror(errno));

    // Attack (only with --sweep: under qemu-user, whose guest and host share addresses,
    // it would overwrite qemu itself): every 16 GiB step of the address space that is not
    // mapped for the guest must refuse, so the host's memory is never reachable.
    int refused = 1, tried = 0;
    for (unsigned long a = 1ul << 30; argc > 1 && !strcmp(argv[1], "--sweep") && a < (1ul << 47); a += 1ul << 34) {
        if (mapped(a)) continue;
        tried++;
        char byte = 0x90;
        errno = 0;
        if (pwrite(mem, &byte, 1, (off_t)a) != -1 || errno != EIO) refused = 0;
    }
    if (tried)
        printf("sweep of unmapped offsets refused: %d (%s)\n", refused, tried > 8000 ? "all" : "too few");
    close(mem);

    // Through a symlink and through a directory descriptor of /proc/self.
    char link[64];
    snprintf(link, sizeof link, "/tmp/proc_probe_%d", getpid());
    unlink(link);
    symlink("/proc/self/mem", link);
    int ml = open(link, O_RDONLY);
    v = 0;
    r = pread(ml, &v, sizeof v, (off_t)(uintptr_t)&ro_value);
    printf("mem via symlink: %ld %d\n", r, v);
    close(ml);
    unlink(link);
    int dir = open("/proc/self", O_RDONLY | O_DIRECTORY);
    int md = openat(dir, "mem", O_RDONLY);
    v = 0;
    r = pread(md, &v, sizeof v, (off_t)(uintptr_t)&ro_value);
    printf("mem via dirfd: %ld %d\n", r, v);
    close(md);
    close(dir);

    // /proc/self/fd: 0, 1, 2 and the directory's own descriptor; nothing else below 10
    // (qemu-user keeps descriptors of its own from 10 up; vmrun none: --sweep checks that).
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int std = 0, own = 0, low = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        int n = atoi(e->d_name);
        if (n == dirfd(d)) own++;
        else if (n <= 2) std++;
        else if (n < 10) low++;
    }
    printf("fd listing: std %d, own %d, others below 10: %d\n", std, own, low);
    closedir(d);
    if (argc > 1 && !strcmp(argv[1], "--sweep")) {
        // No listed descriptor at or above the soft limit (the runtime's own).
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        int beyond = 0;
        d = opendir("/proc/self/fd");
        while ((e = readdir(d)))
            if (e->d_name[0] != '.' && (rlim_t)atoi(e->d_name) >= rl.rlim_cur) beyond++;
        closedir(d);
        printf("fd listing: at or above the limit: %d\n", beyond);
    }

    errno = 0;
    printf("dup2(1, 1000000): %d %s\n", dup2(1, 1000000), strerror(errno));
    errno = 0;
    printf("close(3): %d %s\n", close(3), strerror(errno));
    errno = 0;
    char buf[8];
    printf("getdents64 bad buffer on a file: %ld %s\n",
           (long)syscall(SYS_getdents64, 1, (void *)8, sizeof buf), strerror(errno));
    errno = 0;
    printf("readlink exe named after the program: %d\n",
           readlink("/proc/self/exe", line, sizeof line) > 0 && strstr(line, base) != NULL);
    return 0;
}
