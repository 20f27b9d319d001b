// Must NOT compile: the model is written against the op API (ops/*.h); the backends' folders are not on its path.
#include "ops/cuda/cuda_context.h"
int main() { return 0; }
