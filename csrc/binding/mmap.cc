// Binding layer: memory-mapped files (lib/io/safetensors.ts maps checkpoint shards instead of reading them, so a
// bf16 model's tensors are views of the file's pages, not copies on the JS heap).
// JS:
//   mmapFile(path: string) -> ArrayBuffer
//     The whole file, mapped: an external ArrayBuffer over the mapping whose finalizer unmaps it (when the buffer
//     and every view of it are garbage-collected). The file is opened read-only (O_RDONLY, O_NONBLOCK so a FIFO
//     cannot block, regular files only); the mapping is private copy-on-write (MAP_PRIVATE, PROT_READ|PROT_WRITE),
//     so writing into a view never reaches the file and never faults: written pages become private copies.
//     Pages are read from the file when first touched (lazily). An empty file gives an empty (non-external)
//     ArrayBuffer (mmap cannot map 0 bytes).
//     Errors: TypeError for a non-string path, RangeError for an empty path or one with a NUL byte, Error
//     "mmapFile: cannot open <path>: <strerror>" (with .code "ENOENT", "EACCES", ...) for missing or unreadable
//     files, Error for a path that is not a regular file or a failed mmap.
//   Caveat (not checked, cannot be cheaply): if the file is truncated while mapped, touching a page past its new end
//   raises SIGBUS, as for any mmap user. Checkpoints are written atomically (new file, rename), which replaces the
//   directory entry and leaves a mapped old file intact, so this only happens when something truncates in place.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "binding/args.h"
#include "binding/registry.h"

#ifndef _WIN32
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace xlstm {
namespace {

#ifndef _WIN32
const char* errno_code(int e) {
  switch (e) {
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EISDIR: return "EISDIR";
    case ENOTDIR: return "ENOTDIR";
    case ELOOP: return "ELOOP";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOMEM: return "ENOMEM";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case EOVERFLOW: return "EOVERFLOW";
    default: return "EIO";
  }
}

[[noreturn]] void throw_errno(const ArgCtx& c, const std::string& what, const std::string& path, int e) {
  Napi::Error err = Napi::Error::New(c.info.Env(), std::string(c.fn) + ": " + what + " " + path + ": " + std::strerror(e));
  err.Set("code", Napi::String::New(c.info.Env(), errno_code(e)));
  err.Set("path", Napi::String::New(c.info.Env(), path));
  throw err;
}

void unmap(Napi::Env /*env*/, void* data, size_t* length) {
  munmap(data, *length);
  delete length;
}
#endif

Napi::Value MmapFile(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "mmapFile"};
  require_count(c, 1);
  const std::string path = require_string(c, 0, "path");
  if (path.empty()) throw_range(c, "path is empty");
  if (path.find('\0') != std::string::npos) throw_range(c, "path contains a NUL byte");
#ifdef _WIN32
  throw Napi::Error::New(info.Env(), "mmapFile: memory-mapped files are not supported on this platform (" + path + ")");
#else
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw_errno(c, "cannot open", path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw_errno(c, "cannot stat", path, e);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Napi::Error::New(info.Env(), "mmapFile: " + path + " is not a regular file");
  }
  if (st.st_size <= 0) {
    ::close(fd);
    return Napi::ArrayBuffer::New(info.Env(), 0);
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  const int e = errno;
  ::close(fd);  // the mapping keeps its own reference to the file
  if (p == MAP_FAILED) throw_errno(c, "cannot map", path, e);
  size_t* hint = new size_t(size);
  try {
    return Napi::ArrayBuffer::New(info.Env(), p, size, unmap, hint);
  } catch (...) {
    // e.g. a runtime that forbids external buffers: the finalizer will never run
    ::munmap(p, size);
    delete hint;
    throw;
  }
#endif
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("mmapFile", Napi::Function::New(env, MmapFile, "mmapFile"));
}

}  // namespace
}  // namespace xlstm

XLSTM_REGISTER(mmap, xlstm::Init);
