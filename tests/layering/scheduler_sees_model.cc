// Must NOT compile: the scheduler links only the engine interface, so the model's headers are not on its path.
#include "model/qwen3.h"
int main() { return 0; }
