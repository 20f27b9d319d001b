// Must NOT compile: the server links the engine interface, not the ops, so no kernel header is on its path.
#include "ops/cpu/kernels.h"
int main() { return 0; }
