// Binding layer: host entries of the CUDA twin of the mLSTM cell (cuda/mlstm.cu). Each cuda<CpuExport>Host takes
// exactly the arguments of its CPU export (parsed by the same functions, binding/mlstm_args.h), then runs on the GPU
// (copy in, kernels, copy out, synchronise) when one is available, and otherwise throws an Error
// "<export>: CUDA is not available: <backends().cuda.reason>" (also under host emulation, which has no CUDA kernels).
// cuda<CpuExport>Emulate take the same arguments and replay the device entries' launches on the host with the
// kernels' own __host__ __device__ code (cuda::mlstm_*_emulate; no GPU needed, but a build with CUDA).
// cudaMlstmCoverage(B, NH, S, DHQK, DHV, chunkSize) runs the kernels' write maps over every block and thread of
// each launch on the host (no GPU needed, but a build with CUDA) and returns { outputs: { name: elements not
// written exactly once }, errors: their sum }.
#include <napi.h>

#include <algorithm>
#include <string>

#include "binding/args.h"
#include "binding/async.h"
#include "binding/device_buffer.h"
#include "binding/mlstm_args.h"
#include "binding/registry.h"
#include "cuda_api.h"
#include "kernels/mlstm.h"

namespace xlstm {
namespace {

// Emulate: the *Emulate exports (host replay, no GPU needed), else the *Host ones (GPU). Bf16 (chunkwise only): the
// form under the bf16 autocast (cuda::mlstm_chunkwise_*_bf16); its Emulate exports take an optional last argument
// exactProducts (the host replay with the products unrounded, bf16 = 2 of the emulate entries).
template <bool Chunkwise, bool Emulate, bool Bf16 = false>
Napi::Value CudaForward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, Chunkwise ? (Bf16 ? (Emulate ? "cudaMlstmChunkwiseForwardBf16Emulate" : "cudaMlstmChunkwiseForwardBf16Host")
                                   : (Emulate ? "cudaMlstmChunkwiseForwardEmulate" : "cudaMlstmChunkwiseForwardHost"))
                           : (Emulate ? "cudaMlstmRecurrentForwardEmulate" : "cudaMlstmRecurrentForwardHost")};
  const mlstm_args::ForwardCall a = mlstm_args::parse_forward<Chunkwise>(c, Bf16 && Emulate);
  const int bf16 = !Bf16 ? 0 : Emulate && info.Length() == 22 && require_bool(c, 21, "exactProducts") ? 2 : 1;
  if (!Emulate) require_real_cuda_device(c);
  run_sync(info.Env(), c.fn, [&] {
    if (Chunkwise && Emulate)
      cuda::mlstm_chunkwise_forward_emulate(a.h, a.c_last, a.n_last, a.m_last, a.saved, a.q, a.k, a.v, a.ig, a.fg,
                                            a.st.c0, a.st.n0, a.st.m0, a.d, a.chunk, a.eps, a.parallel_init, bf16);
    else if (Emulate)
      cuda::mlstm_recurrent_forward_emulate(a.h, a.c_last, a.n_last, a.m_last, a.saved, a.q, a.k, a.v, a.ig, a.fg,
                                            a.st.c0, a.st.n0, a.st.m0, a.d, a.eps);
    else if (Chunkwise)
      cuda::mlstm_chunkwise_forward_host(a.h, a.c_last, a.n_last, a.m_last, a.saved, a.q, a.k, a.v, a.ig, a.fg,
                                         a.st.c0, a.st.n0, a.st.m0, a.d, a.chunk, a.eps, a.parallel_init, Bf16);
    else
      cuda::mlstm_recurrent_forward_host(a.h, a.c_last, a.n_last, a.m_last, a.saved, a.q, a.k, a.v, a.ig, a.fg,
                                         a.st.c0, a.st.n0, a.st.m0, a.d, a.eps);
  });
  return info.Env().Undefined();
}

template <bool Chunkwise, bool Emulate, bool Bf16 = false>
Napi::Value CudaBackward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, Chunkwise ? (Bf16 ? (Emulate ? "cudaMlstmChunkwiseBackwardBf16Emulate" : "cudaMlstmChunkwiseBackwardBf16Host")
                                   : (Emulate ? "cudaMlstmChunkwiseBackwardEmulate" : "cudaMlstmChunkwiseBackwardHost"))
                           : (Emulate ? "cudaMlstmRecurrentBackwardEmulate" : "cudaMlstmRecurrentBackwardHost")};
  const mlstm_args::BackwardCall a = mlstm_args::parse_backward<Chunkwise>(c, Bf16 && Emulate);
  const int bf16 = !Bf16 ? 0 : Emulate && info.Length() == 26 && require_bool(c, 25, "exactProducts") ? 2 : 1;
  if (!Emulate) require_real_cuda_device(c);
  run_sync(info.Env(), c.fn, [&] {
    if (Chunkwise && Emulate)
      cuda::mlstm_chunkwise_backward_emulate(a.dq, a.dk, a.dv, a.di, a.df, a.dc0, a.dn0, a.dm0, a.saved, a.h, a.dh,
                                             a.dc_last, a.dn_last, a.q, a.k, a.v, a.ig, a.fg, a.d, a.chunk, a.eps, bf16);
    else if (Emulate)
      cuda::mlstm_recurrent_backward_emulate(a.dq, a.dk, a.dv, a.di, a.df, a.dc0, a.dn0, a.dm0, a.saved, a.dh,
                                             a.dc_last, a.dn_last, a.q, a.k, a.v, a.ig, a.fg, a.d, a.eps);
    else if (Chunkwise)
      cuda::mlstm_chunkwise_backward_host(a.dq, a.dk, a.dv, a.di, a.df, a.dc0, a.dn0, a.dm0, a.saved, a.h, a.dh,
                                          a.dc_last, a.dn_last, a.q, a.k, a.v, a.ig, a.fg, a.d, a.chunk, a.eps, Bf16);
    else
      cuda::mlstm_recurrent_backward_host(a.dq, a.dk, a.dv, a.di, a.df, a.dc0, a.dn0, a.dm0, a.saved, a.dh,
                                          a.dc_last, a.dn_last, a.q, a.k, a.v, a.ig, a.fg, a.d, a.eps);
  });
  return info.Env().Undefined();
}

// A process-wide setting named by its argument `form` (forms[i] is setting i): sets it, returns the previous one's name.
Napi::Value form_setting(const Napi::CallbackInfo& info, const char* fn, std::initializer_list<const char*> forms, int (*set)(int)) {
  ArgCtx c{info, fn};
  const int form = require_choice(c, 0, "form", forms);
  int prev = 0;
  run_sync(info.Env(), c.fn, [&] { prev = set(form); });
  return Napi::String::New(info.Env(), forms.begin()[prev]);
}

// cudaSetMlstmForm(form: "tiles" | "composed" | "auto") -> the previous form: which float32 chunkwise form the device
// entries and the *Emulate replays run ("auto", the default: composed from DK·DV >= 2^16; cuda::set_mlstm_form;
// process-wide, for tests and benchmarks)
Napi::Value CudaSetMlstmForm(const Napi::CallbackInfo& info) {
  return form_setting(info, "cudaSetMlstmForm", {"tiles", "composed", "auto"}, cuda::set_mlstm_form);
}

// cudaSetMlstmStates(form: "walk" | "scan") -> the previous setting: how the composed forms (bf16; float32 composed)
// compute the inter-chunk states: the state kernels' walk over the chunks (default), or every chunk's product as one
// grouped GEMM and an elementwise scan (cuda::set_mlstm_states; process-wide, for tests and benchmarks)
Napi::Value CudaSetMlstmStates(const Napi::CallbackInfo& info) {
  return form_setting(info, "cudaSetMlstmStates", {"walk", "scan"}, cuda::set_mlstm_states);
}

// cudaSetMlstmIntra(form: "products" | "fused") -> the previous setting: how the bf16 form computes the chunkwise
// intra-chunk parts (forward h, backward dq / dk / dv): grouped products (default) or fused per tile
// (cuda::set_mlstm_intra; process-wide, for tests and benchmarks)
Napi::Value CudaSetMlstmIntra(const Napi::CallbackInfo& info) {
  return form_setting(info, "cudaSetMlstmIntra", {"products", "fused"}, cuda::set_mlstm_intra);
}

// Names of mlstm_coverage's outputs, in its order.
const char* const kCoverageNames[cuda::kMlstmCoverageOutputs] = {
    "chunkwiseForward.h",     "chunkwiseForward.cLast",  "chunkwiseForward.nLast",  "chunkwiseForward.mLast",
    "chunkwiseForward.saved", "chunkwiseBackward.dq",    "chunkwiseBackward.dk",    "chunkwiseBackward.dv",
    "chunkwiseBackward.di",   "chunkwiseBackward.df",    "chunkwiseBackward.dc0",   "chunkwiseBackward.dn0",
    "chunkwiseBackward.dm0",  "recurrentForward.h",      "recurrentForward.cLast",  "recurrentForward.nLast",
    "recurrentForward.mLast", "recurrentForward.saved",  "recurrentBackward.dq",    "recurrentBackward.dk",
    "recurrentBackward.dv",   "recurrentBackward.di",    "recurrentBackward.df",    "recurrentBackward.dc0",
    "recurrentBackward.dn0",  "recurrentBackward.dm0",   "tile.sharedSlots",        "fused.h",
    "fused.dq",               "fused.dk",                "fused.dv"};

// Replays allocate per-element counters of every output and walk every thread of every launch: keep them modest.
constexpr int64_t kCoverageMaxElements = int64_t(1) << 24;
constexpr int64_t kCoverageMaxTileThreads = int64_t(1) << 28;

Napi::Value CudaMlstmCoverage(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaMlstmCoverage"};
  require_count(c, 6);
  mlstm_args::Sizes s = mlstm_args::read_sizes(c, 0);
  const int64_t chunk = mlstm_args::read_chunk(c, 5);
  const int64_t saved = mlstm_args::chunkwise_saved_len(c, s.d, chunk);
  const int64_t rsaved = mlstm_args::recurrent_saved_len(c, s.d);
  const int64_t biggest = std::max({s.qk, s.vh, s.cs, saved, rsaved});
  if (biggest > kCoverageMaxElements)
    throw_range(c, "the replay counts writes per element: at most " + std::to_string(kCoverageMaxElements) +
                       " elements per output, got " + std::to_string(biggest));
  // threads of the four tile-kernel launches (16-row tiles x 64-column tiles of 256 threads)
  const int64_t rows = mlstm_num_chunks(s.d.S, chunk) * ((std::min(chunk, s.d.S) + 15) / 16);
  const double tile_threads = static_cast<double>(s.d.B) * s.d.NH * rows * 256.0 *
                              (2.0 * ((s.d.DK + 63) / 64) + 2.0 * ((s.d.DV + 63) / 64));
  if (tile_threads > static_cast<double>(kCoverageMaxTileThreads))
    throw_range(c, "the replay walks every tile-kernel thread: at most " + std::to_string(kCoverageMaxTileThreads) +
                       " per call, got " + std::to_string(static_cast<int64_t>(tile_threads)));
  int64_t bad[cuda::kMlstmCoverageOutputs] = {};
  int64_t total = 0;
  const MlstmDims d = s.d;
  run_sync(info.Env(), c.fn, [&] { total = cuda::mlstm_coverage(d, chunk, bad); });
  Napi::Env env = info.Env();
  Napi::Object outputs = Napi::Object::New(env);
  for (int e = 0; e < cuda::kMlstmCoverageOutputs; ++e)
    outputs.Set(kCoverageNames[e], Napi::Number::New(env, static_cast<double>(bad[e])));
  Napi::Object r = Napi::Object::New(env);
  r.Set("outputs", outputs);
  r.Set("errors", Napi::Number::New(env, static_cast<double>(total)));
  return r;
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaMlstmChunkwiseForwardHost",
              Napi::Function::New(env, CudaForward<true, false>, "cudaMlstmChunkwiseForwardHost"));
  exports.Set("cudaMlstmChunkwiseBackwardHost",
              Napi::Function::New(env, CudaBackward<true, false>, "cudaMlstmChunkwiseBackwardHost"));
  exports.Set("cudaMlstmRecurrentForwardHost",
              Napi::Function::New(env, CudaForward<false, false>, "cudaMlstmRecurrentForwardHost"));
  exports.Set("cudaMlstmRecurrentBackwardHost",
              Napi::Function::New(env, CudaBackward<false, false>, "cudaMlstmRecurrentBackwardHost"));
  exports.Set("cudaMlstmChunkwiseForwardEmulate",
              Napi::Function::New(env, CudaForward<true, true>, "cudaMlstmChunkwiseForwardEmulate"));
  exports.Set("cudaMlstmChunkwiseBackwardEmulate",
              Napi::Function::New(env, CudaBackward<true, true>, "cudaMlstmChunkwiseBackwardEmulate"));
  exports.Set("cudaMlstmRecurrentForwardEmulate",
              Napi::Function::New(env, CudaForward<false, true>, "cudaMlstmRecurrentForwardEmulate"));
  exports.Set("cudaMlstmRecurrentBackwardEmulate",
              Napi::Function::New(env, CudaBackward<false, true>, "cudaMlstmRecurrentBackwardEmulate"));
  exports.Set("cudaMlstmChunkwiseForwardBf16Host",
              Napi::Function::New(env, CudaForward<true, false, true>, "cudaMlstmChunkwiseForwardBf16Host"));
  exports.Set("cudaMlstmChunkwiseBackwardBf16Host",
              Napi::Function::New(env, CudaBackward<true, false, true>, "cudaMlstmChunkwiseBackwardBf16Host"));
  exports.Set("cudaMlstmChunkwiseForwardBf16Emulate",
              Napi::Function::New(env, CudaForward<true, true, true>, "cudaMlstmChunkwiseForwardBf16Emulate"));
  exports.Set("cudaMlstmChunkwiseBackwardBf16Emulate",
              Napi::Function::New(env, CudaBackward<true, true, true>, "cudaMlstmChunkwiseBackwardBf16Emulate"));
  exports.Set("cudaSetMlstmForm", Napi::Function::New(env, CudaSetMlstmForm, "cudaSetMlstmForm"));
  exports.Set("cudaSetMlstmStates", Napi::Function::New(env, CudaSetMlstmStates, "cudaSetMlstmStates"));
  exports.Set("cudaSetMlstmIntra", Napi::Function::New(env, CudaSetMlstmIntra, "cudaSetMlstmIntra"));
  exports.Set("cudaMlstmCoverage", Napi::Function::New(env, CudaMlstmCoverage, "cudaMlstmCoverage"));
}

}  // namespace
}  // namespace xlstm

XLSTM_REGISTER(cuda_mlstm, xlstm::Init);
