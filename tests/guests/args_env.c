/* Prints argc, argv, the environment (sorted: qemu-user hands the guest its environment in
 * reverse order, the kernel in the original order), a few getenv results and auxv values that
 * are the same under every faithful emulator. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

extern char **environ;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    printf("argc %d\n", argc);
    for (int i = 0; i < argc; i++) printf("argv[%d] = \"%s\" (%zu bytes)\n", i, argv[i], strlen(argv[i]));
    printf("argv[argc] is %s\n", argv[argc] == NULL ? "NULL" : "not NULL");
    int n = 0;
    while (environ[n]) n++;
    char **sorted = malloc(sizeof(char *) * (size_t)(n + 1));
    memcpy(sorted, environ, sizeof(char *) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof(char *), cmp_str);
    for (int i = 0; i < n; i++) printf("env (sorted) = \"%s\"\n", sorted[i]);
    free(sorted);
    printf("environ has %d entries\n", n);
    const char *vars[] = {"VMC_TEST_VAR", "PATH", "LANG", "UNSET_VARIABLE_XYZ"};
    for (unsigned i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        printf("getenv(%s) = %s%s%s\n", vars[i], v ? "\"" : "", v ? v : "NULL", v ? "\"" : "");
    }
    setenv("NEW_VAR", "set by guest", 1);
    unsetenv("LANG");
    printf("after setenv/unsetenv: NEW_VAR=%s LANG=%s\n", getenv("NEW_VAR"), getenv("LANG") ? getenv("LANG") : "NULL");
    printf("AT_PAGESZ %lu AT_SECURE %lu sysconf pagesize %ld\n", getauxval(AT_PAGESZ), getauxval(AT_SECURE), sysconf(_SC_PAGESIZE));
    printf("AT_EXECFN matches argv[0]: %d\n", getauxval(AT_EXECFN) && strcmp((const char *)getauxval(AT_EXECFN), argv[0]) == 0);
    unsigned char *rnd = (unsigned char *)getauxval(AT_RANDOM);
    printf("AT_RANDOM present: %d\n", rnd != NULL);
    printf("uid==euid %d gid==egid %d\n", getuid() == geteuid(), getgid() == getegid());
    return argc - 1;
}
