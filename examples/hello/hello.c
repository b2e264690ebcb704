/* hello: the example image's program; prints the greeting from its config file (argv[1]). */
#include <stdio.h>

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : "/etc/hello/hello.conf";
  FILE* f = fopen(path, "r");
  if (!f) {
    perror(path);
    return 1;
  }
  char line[256];
  while (fgets(line, sizeof line, f)) fputs(line, stdout);
  fclose(f);
  return 0;
}
