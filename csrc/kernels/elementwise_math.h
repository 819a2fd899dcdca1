// Elementwise math shared by the CPU kernels (csrc/kernels/elementwise.cc, reduce.cc) and their CUDA twin
// (cuda/elementwise.cu): the one definition of every per-element forward and backward formula and of the
// broadcast index map, so the CPU tests exercise exactly the code the GPU runs. Plain C++ under a host compiler,
// __host__ __device__ under nvcc. No CUDA headers, no N-API.
//
// Formulas (float32 in, float32 out; "stable" = no overflow and no cancellation on either tail):
//   exp      y = e^x                               dx = dy * y
//   log      y = ln x                              dx = dy / x
//   sigmoid  y = 1 / (1 + e^-x)  (stable)          dx = dy * y * (1 - y)
//   logsigmoid y = min(x, 0) - log1p(e^-|x|)       dx = dy * sigmoid(-x)
//   tanh     y = tanh x                            dx = dy * (1 - y)(1 + y)  (= 1 - y^2 without cancellation)
//   softplus y = x > 20 ? x : max(x, 0) + log1p(e^-|x|)   (torch beta=1, threshold=20)
//                                                  dx = x > 20 ? dy : dy * sigmoid(x)
//   relu     y = x < 0 ? 0 : x   (NaN stays NaN)   dx = x <= 0 ? 0 : dy   (torch threshold_backward)
//   gelu     y = x * Phi(x), Phi(x) = erfc(-x/sqrt2)/2 (torch approximate="none"; erfc avoids the
//            cancellation of 1 + erf(x/sqrt2) for x << 0)    dx = dy * (Phi(x) + x * phi(x))
//   geluTanh y = x/2 * (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3) (torch approximate="tanh"), computed
//            as x * sigmoid(2u) (1 + tanh u = 2 sigmoid(2u), no cancellation)
//                                                  dx = dy * (s + 2 x s (1-s) sqrt(2/pi) (1 + 3*0.044715 x^2)),
//                                                  s = sigmoid(2u)   (torch's formula, rewritten with s)
//   silu     y = x * sigmoid(x)                    dx = dy * s * (1 + x (1 - s))
//   neg      y = -x                                dx = -dy
//   affine   y = fma(a, x, b)  (one rounding)       dx = a dy
// Binary (NumPy broadcasting): add, sub, mul, div; gradients in the broadcast (output) shape:
//   add: da = dy, db = dy; sub: da = dy, db = -dy; mul: da = dy b, db = dy a; div: da = dy / b, db = -dy (a/b) / b
#pragma once
#include <math.h>
#include <stdint.h>

#include <type_traits>

#if defined(__CUDACC__)
#define XLSTM_EW_FN static __host__ __device__ __forceinline__
#else
// static: each translation unit (scalar, AVX-512) keeps its own copy compiled with its own ISA flags
#define XLSTM_EW_FN static inline
#endif

namespace xlstm {

enum class UnaryOp : int { Exp, Log, Sigmoid, LogSigmoid, Tanh, Softplus, Relu, Gelu, GeluTanh, Silu, Neg, Affine };
constexpr int kUnaryOpCount = 12;
enum class BinaryOp : int { Add, Sub, Mul, Div };
constexpr int kBinaryOpCount = 4;

// Broadcast iteration over the output of a binary op: out is dense row-major with `shape`; a and b are read at
// offsets sum_d idx[d] * stride[d] (stride 0 on broadcast dimensions). Built by make_broadcast_plan
// (elementwise.h), which drops size-1 dimensions and merges adjacent ones, so ndim is usually 1 to 3.
constexpr int kMaxBroadcastDims = 16;
struct BroadcastPlan {
  int ndim = 0;
  int64_t numel = 1;
  int64_t shape[kMaxBroadcastDims] = {};
  int64_t a_stride[kMaxBroadcastDims] = {};
  int64_t b_stride[kMaxBroadcastDims] = {};
};

namespace ew {

constexpr float kSqrt1_2 = 0.70710678118654752440f;       // 1/sqrt(2)
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;    // 1/sqrt(2 pi)
constexpr float kSqrt2OverPi = 0.79788456080286535588f;   // sqrt(2/pi)
constexpr float kGeluKappa = 0.044715f;
constexpr float kSoftplusThreshold = 20.0f;

// sigmoid(z) and sigmoid(-z) = 1 - sigmoid(z), both without overflow or cancellation.
XLSTM_EW_FN void sigmoid_pair(float z, float* s, float* sm) {
  float e = expf(-fabsf(z));
  float r = 1.0f / (1.0f + e);
  bool pos = z >= 0.0f;
  *s = pos ? r : e * r;
  *sm = pos ? e * r : r;
}

XLSTM_EW_FN float sigmoid(float x) {
  float e = expf(-fabsf(x));
  float r = 1.0f / (1.0f + e);
  return x >= 0.0f ? r : e * r;  // NaN: e * r is NaN
}

XLSTM_EW_FN float logsigmoid(float x) { return fminf(x, 0.0f) - log1pf(expf(-fabsf(x))); }

XLSTM_EW_FN float softplus(float x) {
  return x > kSoftplusThreshold ? x : fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
}

XLSTM_EW_FN float gelu_cdf(float x) { return 0.5f * erfcf(-x * kSqrt1_2); }

XLSTM_EW_FN float gelu_tanh_u(float x) { return kSqrt2OverPi * (x + kGeluKappa * x * x * x); }

// ---- per-op forward and backward, selected at compile time --------------------------------------------------

template <UnaryOp OP>
XLSTM_EW_FN float unary_forward(float x, float a, float b) {
  if constexpr (OP == UnaryOp::Exp) return expf(x);
  else if constexpr (OP == UnaryOp::Log) return logf(x);
  else if constexpr (OP == UnaryOp::Sigmoid) return sigmoid(x);
  else if constexpr (OP == UnaryOp::LogSigmoid) return logsigmoid(x);
  else if constexpr (OP == UnaryOp::Tanh) return tanhf(x);
  else if constexpr (OP == UnaryOp::Softplus) return softplus(x);
  else if constexpr (OP == UnaryOp::Relu) return x < 0.0f ? 0.0f : x;
  else if constexpr (OP == UnaryOp::Gelu) return x * gelu_cdf(x);
  else if constexpr (OP == UnaryOp::GeluTanh) return x * sigmoid(2.0f * gelu_tanh_u(x));
  else if constexpr (OP == UnaryOp::Silu) return x * sigmoid(x);
  else if constexpr (OP == UnaryOp::Neg) return -x;
  else return fmaf(a, x, b);  // Affine: one rounding (no cancellation error when a x ~ -b)
}

// dx for one element; x is the forward input, y the forward output (only those named in unary_backward_reads
// are read: the others may be anything).
template <UnaryOp OP>
XLSTM_EW_FN float unary_backward(float x, float y, float dy, float a) {
  if constexpr (OP == UnaryOp::Exp) return dy * y;
  else if constexpr (OP == UnaryOp::Log) return dy / x;
  else if constexpr (OP == UnaryOp::Sigmoid) return dy * (y * (1.0f - y));
  else if constexpr (OP == UnaryOp::LogSigmoid) return dy * sigmoid(-x);
  else if constexpr (OP == UnaryOp::Tanh) return dy * ((1.0f - y) * (1.0f + y));  // 1 - y exact near |y| = 1
  else if constexpr (OP == UnaryOp::Softplus) return x > kSoftplusThreshold ? dy : dy * sigmoid(x);
  else if constexpr (OP == UnaryOp::Relu) return x <= 0.0f ? 0.0f : dy;
  else if constexpr (OP == UnaryOp::Gelu) return dy * (gelu_cdf(x) + x * (kInvSqrt2Pi * expf(-0.5f * x * x)));
  else if constexpr (OP == UnaryOp::GeluTanh) {
    float s, sm;
    sigmoid_pair(2.0f * gelu_tanh_u(x), &s, &sm);
    return dy * (s + 2.0f * x * s * sm * kSqrt2OverPi * (1.0f + 3.0f * kGeluKappa * x * x));
  } else if constexpr (OP == UnaryOp::Silu) {
    float s, sm;
    sigmoid_pair(x, &s, &sm);
    return dy * (s * (1.0f + x * sm));
  } else if constexpr (OP == UnaryOp::Neg) return -dy;
  else return a * dy;  // Affine
}

// Which saved tensors the backward of `op` reads: bit 1 = x (input), bit 2 = y (output).
constexpr int kReadsX = 1, kReadsY = 2;
XLSTM_EW_FN int unary_backward_reads(UnaryOp op) {
  switch (op) {
    case UnaryOp::Exp:
    case UnaryOp::Sigmoid:
    case UnaryOp::Tanh: return kReadsY;
    case UnaryOp::Neg:
    case UnaryOp::Affine: return 0;
    default: return kReadsX;
  }
}

template <BinaryOp OP>
XLSTM_EW_FN float binary_forward(float a, float b) {
  if constexpr (OP == BinaryOp::Add) return a + b;
  else if constexpr (OP == BinaryOp::Sub) return a - b;
  else if constexpr (OP == BinaryOp::Mul) return a * b;
  else return a / b;
}

// Gradients of one output element w.r.t. a and b.
template <BinaryOp OP>
XLSTM_EW_FN void binary_backward(float a, float b, float dy, float* da, float* db) {
  if constexpr (OP == BinaryOp::Add) {
    *da = dy;
    *db = dy;
  } else if constexpr (OP == BinaryOp::Sub) {
    *da = dy;
    *db = -dy;
  } else if constexpr (OP == BinaryOp::Mul) {
    *da = dy * b;
    *db = dy * a;
  } else {
    *da = dy / b;
    *db = -(dy * (a / b)) / b;
  }
}

// Offsets of output element i into a and b.
XLSTM_EW_FN void broadcast_offsets(const BroadcastPlan& p, int64_t i, int64_t* ao, int64_t* bo) {
  int64_t oa = 0, ob = 0;
  for (int d = p.ndim - 1; d >= 0; --d) {
    int64_t s = p.shape[d];
    int64_t idx = i % s;
    i /= s;
    oa += idx * p.a_stride[d];
    ob += idx * p.b_stride[d];
  }
  *ao = oa;
  *bo = ob;
}

// ---- run-time op -> compile-time op --------------------------------------------------------------------------

template <class F>
static inline void dispatch_unary(UnaryOp op, F&& f) {
  using U = UnaryOp;
  switch (op) {
    case U::Exp: f(std::integral_constant<U, U::Exp>{}); break;
    case U::Log: f(std::integral_constant<U, U::Log>{}); break;
    case U::Sigmoid: f(std::integral_constant<U, U::Sigmoid>{}); break;
    case U::LogSigmoid: f(std::integral_constant<U, U::LogSigmoid>{}); break;
    case U::Tanh: f(std::integral_constant<U, U::Tanh>{}); break;
    case U::Softplus: f(std::integral_constant<U, U::Softplus>{}); break;
    case U::Relu: f(std::integral_constant<U, U::Relu>{}); break;
    case U::Gelu: f(std::integral_constant<U, U::Gelu>{}); break;
    case U::GeluTanh: f(std::integral_constant<U, U::GeluTanh>{}); break;
    case U::Silu: f(std::integral_constant<U, U::Silu>{}); break;
    case U::Neg: f(std::integral_constant<U, U::Neg>{}); break;
    case U::Affine: f(std::integral_constant<U, U::Affine>{}); break;
  }
}

template <class F>
static inline void dispatch_binary(BinaryOp op, F&& f) {
  using B = BinaryOp;
  switch (op) {
    case B::Add: f(std::integral_constant<B, B::Add>{}); break;
    case B::Sub: f(std::integral_constant<B, B::Sub>{}); break;
    case B::Mul: f(std::integral_constant<B, B::Mul>{}); break;
    case B::Div: f(std::integral_constant<B, B::Div>{}); break;
  }
}

}  // namespace ew
}  // namespace xlstm
