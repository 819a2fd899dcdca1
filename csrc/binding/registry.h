// Binding layer: each csrc/binding/<family>.cc registers its exports with XLSTM_REGISTER, so adding a
// kernel family never touches a shared file. addon.cc calls every registered init at module load.
#pragma once
#include <napi.h>

namespace xlstm {

using InitFn = void (*)(Napi::Env env, Napi::Object exports);

struct Registration {
  Registration(const char* family, InitFn fn);
};

void init_all_families(Napi::Env env, Napi::Object exports);

}  // namespace xlstm

#define XLSTM_REGISTER(family, fn) static ::xlstm::Registration xlstm_registration_##family(#family, fn)
