// CPU kernels: reductions (sum, mean, max with argmax) of a dense row-major float32 tensor over any set of axes,
// and their backward. Sums accumulate in float64 and round once, so they are as accurate as float32 can hold
// for any length. Work is cut into pieces whose boundaries depend only on the shape, never on the thread count,
// so results are bit-identical for any number of threads.
//
// Layouts: x has `shape` (ndim entries); `reduced[d]` != 0 marks the reduced axes. out holds the kept axes in
// their order (keepdim only inserts size-1 axes, which does not change the layout): numel = product of the kept
// sizes. argmax (max only) holds, per output, the flat index into x of the chosen element: the first maximum in
// row-major order of the reduced coordinates, where NaN counts as larger than everything (the first NaN wins,
// as torch.max propagates NaN). Reductions of an empty set: sum 0, mean NaN, max NaN with argmax -1 (the binding
// rejects empty max). Gradients use "=" (overwrite).
#pragma once
#include <cstdint>
#include <string>

namespace xlstm {

enum class ReduceOp : int { Sum, Mean, Max };
constexpr int kReduceOpCount = 3;

const char* reduce_op_name(ReduceOp op);  // "sum", "mean", "max"
bool parse_reduce_op(const std::string& name, ReduceOp* op);
std::string reduce_op_list();

// out = reduce(x) over the marked axes; argmax may be null (max only).
void reduce_axes(ReduceOp op, float* out, int64_t* argmax, const float* x, int ndim, const int64_t* shape,
                 const uint8_t* reduced);

// dx from dy (the gradient of out, same layout): sum: dx = dy broadcast; mean: dx = dy / count broadcast;
// max: dx = 0 except dx[argmax[o]] = dy[o] (argmax from reduce_axes, each in [0, numel(x))).
// Throws std::invalid_argument when a merged broadcast needs too many dimensions (more than 16 alternating
// kept/reduced runs).
void reduce_axes_backward(ReduceOp op, float* dx, const float* dy, const int64_t* argmax, int ndim,
                          const int64_t* shape, const uint8_t* reduced);

// Sum of x[0..n) in float64 (threads and SIMD; same pieces as reduce_axes).
double sum_all(const float* x, int64_t n);

}  // namespace xlstm
