// The quorate binary.
#include "quorate/cli/cli.h"

int main(int argc, char** argv) { return quorate::cli::run(argc, argv); }
