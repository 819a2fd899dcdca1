// Binding layer: dimension permutation (csrc/kernels/permute.h).
// JS: permute(out, x, shape, perm) — out and x typed arrays of the same kind; out gets x permuted.
#include <napi.h>

#include <string>
#include <vector>

#include "binding/args.h"
#include "binding/async.h"
#include "binding/permute_args.h"
#include "binding/registry.h"
#include "kernels/permute.h"

namespace xlstm {
namespace {

// Argument parsing: binding/permute_args.h (shared with the CUDA twin's entry in cuda_misc.cc).
Napi::Value Permute(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "permute"};
  const permute_args::PermuteCall a = permute_args::parse_permute(c);
  run_sync(info.Env(), c.fn, [&] {
    permute_copy(a.out, a.x, static_cast<int>(a.esize), a.shape.data(), a.perm.data(), static_cast<int>(a.shape.size()));
  });
  return info.Env().Undefined();
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("permute", Napi::Function::New(env, Permute, "permute"));
}

}  // namespace
}  // namespace xlstm

XLSTM_REGISTER(shape, xlstm::Init);
