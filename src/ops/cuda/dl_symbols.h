// resolve_symbols: fills a run-time loaded library's function table by name (dlsym), naming the first one missing.
#pragma once

#include <dlfcn.h>

#include <initializer_list>
#include <string>

#include "core/status.h"

namespace embedserve::cuda {

struct Symbol {
  void** slot;
  const char* name;
};

// `library` names the file in the error, `expected` what it should have been ("cuBLAS 13").
inline Status resolve_symbols(void* lib, const std::string& library, const char* expected,
                              std::initializer_list<Symbol> symbols) {
  for (const Symbol& s : symbols) {
    *s.slot = dlsym(lib, s.name);
    if (!*s.slot) return not_found(library + " has no symbol " + s.name + ": is it " + expected + "?");
  }
  return Status();
}

}  // namespace embedserve::cuda
