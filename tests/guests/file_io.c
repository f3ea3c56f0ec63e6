/* File I/O in a temporary directory made by mkdtemp in the working directory: open/create,
 * write, lseek (SET/CUR/END, holes), read, pread/pwrite, fstat/stat/lstat, ftruncate, rename,
 * link/symlink/readlink, unlink, mkdir/rmdir, errno values, dup/dup2, pipes, stdio (fopen,
 * fprintf, fgets, fseek, ftell, fread), and a sorted directory listing with opendir/readdir. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define CHECK(x)                                                                       \
    do {                                                                               \
        if (!(x)) printf("CHECK FAILED line %d: %s (errno %s)\n", __LINE__, #x, strerrorname_np(errno)); \
    } while (0)

static void show_stat(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        printf("stat %s: %s\n", path, strerrorname_np(errno));
        return;
    }
    /* Directory sizes and block counts depend on the file system: only file sizes are shown. */
    printf("stat %s: size %lld mode %o %s nlink %lu\n", path, S_ISDIR(st.st_mode) ? -1LL : (long long)st.st_size, st.st_mode & 07777,
           S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "dir" : S_ISLNK(st.st_mode) ? "link" : "other",
           (unsigned long)st.st_nlink);
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void list_dir(const char *path) {
    DIR *d = opendir(path);
    if (!d) {
        printf("opendir %s: %s\n", path, strerrorname_np(errno));
        return;
    }
    char *names[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 64) {
        const char *t = e->d_type == DT_REG ? "f" : e->d_type == DT_DIR ? "d" : e->d_type == DT_LNK ? "l" : "?";
        char *s = malloc(strlen(e->d_name) + 4);
        sprintf(s, "%s %s", e->d_name, t);
        names[n++] = s;
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_names);
    printf("listing of %s (%d entries):", path, n);
    for (int i = 0; i < n; i++) {
        printf(" [%s]", names[i]);
        free(names[i]);
    }
    printf("\n");
}

int main(void) {
    umask(022);
    char tmpl[] = "vmctestXXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir) {
        printf("mkdtemp failed: %s\n", strerrorname_np(errno));
        return 1;
    }
    printf("mkdtemp ok, name length %zu, prefix ok %d\n", strlen(dir), strncmp(dir, "vmctest", 7) == 0);
    CHECK(chdir(dir) == 0);

    int fd = open("data.bin", O_CREAT | O_EXCL | O_RDWR, 0640);
    CHECK(fd >= 0);
    printf("open O_EXCL again: %d %s\n", open("data.bin", O_CREAT | O_EXCL | O_RDWR, 0640), strerrorname_np(errno));
    char buf[8192];
    for (int i = 0; i < (int)sizeof buf; i++) buf[i] = (char)(i * 7 + 3);
    printf("write %zd\n", write(fd, buf, 5000));
    printf("lseek cur %lld end %lld set %lld\n", (long long)lseek(fd, 0, SEEK_CUR), (long long)lseek(fd, -100, SEEK_END),
           (long long)lseek(fd, 10, SEEK_SET));
    char rb[64];
    printf("read %zd:", read(fd, rb, 16));
    for (int i = 0; i < 16; i++) printf(" %02x", (unsigned char)rb[i]);
    printf("\n");
    printf("lseek past end %lld, write %zd\n", (long long)lseek(fd, 10000, SEEK_SET), write(fd, "END", 3));
    printf("pread %zd at 4999:", pread(fd, rb, 8, 4999));
    for (int i = 0; i < 8; i++) printf(" %02x", (unsigned char)rb[i]);
    printf(" (hole reads zeros)\n");
    printf("pwrite %zd, pos still %lld\n", pwrite(fd, "XYZ", 3, 1), (long long)lseek(fd, 0, SEEK_CUR));
    printf("read at end %zd\n", read(fd, rb, 10));
    printf("lseek negative: %lld %s\n", (long long)lseek(fd, -1, SEEK_SET), strerrorname_np(errno));
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    printf("fstat size %lld mode %o\n", (long long)st.st_size, st.st_mode & 0777);
    CHECK(ftruncate(fd, 1234) == 0);
    CHECK(fstat(fd, &st) == 0);
    printf("after ftruncate size %lld\n", (long long)st.st_size);
    int fd2 = dup(fd);
    printf("dup > fd %d; shared offset: %lld %lld\n", fd2 > fd, (long long)lseek(fd, 77, SEEK_SET), (long long)lseek(fd2, 0, SEEK_CUR));
    CHECK(dup2(fd, 50) == 50);
    CHECK(close(50) == 0);
    printf("close twice: %d %s\n", close(50), strerrorname_np(errno));
    CHECK(close(fd2) == 0);
    CHECK(close(fd) == 0);
    show_stat("data.bin");

    CHECK(rename("data.bin", "renamed.bin") == 0);
    show_stat("data.bin");
    show_stat("renamed.bin");
    CHECK(link("renamed.bin", "hardlink.bin") == 0);
    show_stat("renamed.bin");
    CHECK(symlink("renamed.bin", "symlink") == 0);
    char target[64] = {0};
    ssize_t tl = readlink("symlink", target, sizeof target - 1);
    printf("readlink %zd \"%s\"\n", tl, target);
    struct stat lst;
    CHECK(lstat("symlink", &lst) == 0);
    printf("lstat symlink is link %d, stat follows to size %lld\n", S_ISLNK(lst.st_mode), (stat("symlink", &st), (long long)st.st_size));
    CHECK(mkdir("subdir", 0755) == 0);
    printf("mkdir again: %d %s\n", mkdir("subdir", 0755), strerrorname_np(errno));
    show_stat("subdir");
    printf("access F_OK %d R_OK %d missing %d %s\n", access("renamed.bin", F_OK), access("renamed.bin", R_OK),
           access("missing", F_OK), strerrorname_np(errno));
    printf("open missing: %d %s\n", open("missing/file", O_RDONLY), strerrorname_np(errno));

    FILE *f = fopen("subdir/text.txt", "w+");
    CHECK(f != NULL);
    for (int i = 0; i < 20; i++) fprintf(f, "line %02d: %s %g\n", i, i % 2 ? "odd" : "even", i / 4.0);
    printf("ftell after writing %ld\n", ftell(f));
    rewind(f);
    char line[128];
    int count = 0;
    while (fgets(line, sizeof line, f)) {
        if (count % 6 == 0) printf("fgets: %s", line);
        count++;
    }
    printf("fgets read %d lines, feof %d\n", count, feof(f) != 0);
    CHECK(fseek(f, -10, SEEK_END) == 0);
    size_t got = fread(line, 1, 100, f);
    line[got] = 0;
    printf("fread tail %zu \"%.*s\"\n", got, (int)got - 1, line);
    CHECK(fclose(f) == 0);
    f = fopen("subdir/text.txt", "a");
    fputs("appended\n", f);
    fclose(f);
    show_stat("subdir/text.txt");
    f = fopen("nonexistent/x", "r");
    printf("fopen missing: %s %s\n", f ? "opened" : "NULL", strerrorname_np(errno));

    int p[2];
    CHECK(pipe(p) == 0);
    printf("pipe write %zd read %zd\n", write(p[1], "through a pipe", 14), read(p[0], rb, sizeof rb));
    close(p[0]);
    close(p[1]);

    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "file-%c%d", 'e' - i, i);
        int t = open(name, O_CREAT | O_WRONLY | O_TRUNC, 0600);
        CHECK(t >= 0);
        CHECK(write(t, name, (size_t)i) == i);
        close(t);
    }
    list_dir(".");
    list_dir("subdir");
    show_stat("file-a4");

    printf("rmdir non-empty: %d %s\n", rmdir("subdir"), strerrorname_np(errno));
    printf("unlink dir: %d %s\n", unlink("subdir"), strerrorname_np(errno));
    CHECK(unlink("subdir/text.txt") == 0);
    CHECK(rmdir("subdir") == 0);
    DIR *d = opendir(".");
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) CHECK(unlink(e->d_name) == 0);
    closedir(d);
    list_dir(".");
    CHECK(chdir("..") == 0);
    CHECK(rmdir(dir) == 0);
    printf("stat removed dir: %d %s\n", stat(dir, &st), strerrorname_np(errno));
    printf("cwd has no leftovers: ");
    list_dir(".");
    return 0;
}
