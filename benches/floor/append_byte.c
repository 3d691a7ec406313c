/* The benchmark's plugin, as cheap as a plugin can be: appends one byte to
   the file named by its argument (so that runs are counted) and exits 0. */
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2)
        return 3;
    int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, ".", 1) != 1)
        return 3;
    return 0;
}
