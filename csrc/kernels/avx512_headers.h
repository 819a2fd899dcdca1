// <immintrin.h> for the files compiled with AVX-512 (or AMX) flags. GCC 12 reports -W(maybe-)uninitialized inside
// its own AVX-512 headers (the _mm512_undefined_* operands of vpmovzxwd, extract and reduce intrinsics: GCC bug
// 105593, fixed in GCC 13); the warning is about the headers, not the code that includes them, so it is off in those
// files.
#pragma once
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>
