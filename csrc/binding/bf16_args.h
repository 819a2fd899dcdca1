// Binding layer: the sizes of a bf16Linear call (rows, inFeatures, outFeatures at arguments 4..6, roundX at 7) and
// the element counts they imply, parsed the same way for the CPU export (bf16.cc) and its device twin
// (cuda_ops_bf16.cc).
#pragma once
#include <cstdint>

#include "binding/args.h"

namespace xlstm {
namespace bf16_args {

struct LinearSizes {
  int64_t rows, in, out;
  bool round_x;
  int64_t ny, nx, nw;  // rows*out, rows*in, out*in
};

inline LinearSizes parse_linear_sizes(const ArgCtx& c) {
  require_count(c, 8);
  LinearSizes s;
  s.rows = require_int(c, 4, "rows", 0, INT32_MAX);
  s.in = require_int(c, 5, "inFeatures", 0, INT32_MAX);
  s.out = require_int(c, 6, "outFeatures", 0, INT32_MAX);
  s.round_x = require_bool(c, 7, "roundX");
  s.ny = checked_product(c, "rows*outFeatures", {s.rows, s.out});
  s.nx = checked_product(c, "rows*inFeatures", {s.rows, s.in});
  s.nw = checked_product(c, "outFeatures*inFeatures", {s.out, s.in});
  return s;
}

}  // namespace bf16_args
}  // namespace xlstm
