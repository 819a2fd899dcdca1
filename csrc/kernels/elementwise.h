// CPU kernels: elementwise unary ops (activations, affine), binary ops with NumPy broadcasting, and their
// backward passes. The per-element formulas live in elementwise_math.h (shared with cuda/elementwise.cu); this
// file is the loops: threads via parallel_for, AVX-512 variants in elementwise_avx512.cc (chosen at run time by
// simd_level(); AVX2 machines use the portable loops, which the compiler vectorises for the plain arithmetic).
//
// Layouts: every array is dense row-major float32. A binary op's output has the broadcast shape of its inputs;
// the inputs are read through a BroadcastPlan (element strides, 0 on broadcast dimensions). Gradients are
// written with "=" (overwrite), binary gradients in the output (broadcast) shape: callers sum them down.
// An output may be the very same array as an input of the output's shape (in place); partial overlap is not
// supported.
#pragma once
#include <cstdint>
#include <string>

#include "kernels/elementwise_math.h"

namespace xlstm {

// JS names of the ops ("exp", "log", "sigmoid", "logsigmoid", "tanh", "softplus", "relu", "gelu", "geluTanh",
// "silu", "neg", "affine"; "add", "sub", "mul", "div") and their parsers (false for an unknown name).
const char* unary_op_name(UnaryOp op);
bool parse_unary_op(const std::string& name, UnaryOp* op);
std::string unary_op_list();  // "exp, log, ..." for error messages
const char* binary_op_name(BinaryOp op);
bool parse_binary_op(const std::string& name, BinaryOp* op);
std::string binary_op_list();

// out[i] = op(x[i]); a, b are the affine parameters (out = a x + b), ignored by the other ops.
void elementwise_unary(UnaryOp op, float* out, const float* x, float a, float b, int64_t n);
// dx[i] = dy[i] * op'(x[i]); reads x and/or y (the forward output) as ew::unary_backward_reads(op) says; the
// other pointer may be null. a is the affine slope.
void elementwise_unary_backward(UnaryOp op, float* dx, const float* x, const float* y, const float* dy, float a,
                                int64_t n);

// Broadcast plan of two dense row-major shapes (NumPy rules). Throws std::invalid_argument naming both shapes
// when they cannot be broadcast, or when the merged plan needs more than kMaxBroadcastDims dimensions.
// out_shape (may be null) receives the broadcast shape, max(a_ndim, b_ndim) entries.
// The gated activation of a gated feed-forward over h [rows, 2P] (gate | value halves of each row):
//   y [rows, P] = act(gate) ⊙ value,   dh = [act'(gate) ⊙ dy ⊙ value | act(gate) ⊙ dy]
// per element exactly the arithmetic of elementwise_unary then a binary mul (and their backward), so it agrees bit
// for bit with the composed ops; act(gate) is recomputed in the backward, not saved.
void gated_unary(UnaryOp op, float* y, const float* h, int64_t rows, int64_t P, float a, float b);
void gated_unary_backward(UnaryOp op, float* dh, const float* h, const float* dy, int64_t rows, int64_t P, float a,
                          float b);

BroadcastPlan make_broadcast_plan(const int64_t* a_shape, int a_ndim, const int64_t* b_shape, int b_ndim,
                                  int64_t* out_shape);
// A plan from explicit element strides for a dense output of `shape` (drops size-1 dimensions, merges
// adjacent ones). Throws std::invalid_argument past kMaxBroadcastDims merged dimensions.
BroadcastPlan make_strided_plan(int ndim, const int64_t* shape, const int64_t* a_stride, const int64_t* b_stride);

// out[i] = op(a[a_off(i)], b[b_off(i)]) for every element i of the dense output.
void elementwise_binary(BinaryOp op, float* out, const float* a, const float* b, const BroadcastPlan& plan);
// Gradients of sum(out * dy) in the output shape: da[i], db[i] per element (either pointer may be null).
void elementwise_binary_backward(BinaryOp op, float* da, float* db, const float* a, const float* b,
                                 const float* dy, const BroadcastPlan& plan);

// AVX-512 loops (elementwise_avx512.cc); called by the functions above when simd_level() is AVX512, on one
// thread's share of the work. Binary rows take element strides sa, sb (0 = broadcast scalar, 1 = contiguous,
// anything else = strided).
namespace avx512 {
void unary(UnaryOp op, float* out, const float* x, float a, float b, int64_t n);
void unary_backward(UnaryOp op, float* dx, const float* x, const float* y, const float* dy, float a, int64_t n);
void binary_row(BinaryOp op, float* out, const float* a, int64_t sa, const float* b, int64_t sb, int64_t n);
void binary_backward_row(BinaryOp op, float* da, float* db, const float* a, int64_t sa, const float* b, int64_t sb,
                         const float* dy, int64_t n);
// sum of x[0..n) in float64; acc[j] += x[j] in float64 (reduce.cc)
double sum_f64(const float* x, int64_t n);
void accumulate_f64(double* acc, const float* x, int64_t n);
}  // namespace avx512

}  // namespace xlstm
