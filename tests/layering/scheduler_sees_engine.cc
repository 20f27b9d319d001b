// Must compile: the control for the probes beside it (the scheduler does see the engine interface it links).
#include "engine/engine.h"
#include "scheduler/scheduler.h"
int main() { return 0; }
