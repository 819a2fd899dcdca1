// Binding layer: which ArrayBuffers native work is using right now. A Promise call (async.h) pins the buffers of its
// typed-array arguments from when it is queued until it settles; releaseHostBuffers (host_memory.cc: what an
// xlstm.scope does with the storage made inside it) leaves a pinned buffer alone, because detaching it would free
// memory that a compute thread is still reading or writing. Keyed by the ArrayBuffer's data pointer, counted (one
// buffer may back several arguments, or several pending calls); process-wide, since worker threads share the pool.
#pragma once

namespace xlstm {

void pin_host_memory(const void* base);
void unpin_host_memory(const void* base);
bool host_memory_pinned(const void* base);

}  // namespace xlstm
