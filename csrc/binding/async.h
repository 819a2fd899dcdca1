// Binding layer: run kernel work off the JS thread and return a Promise (sharp's baton + node-llama-cpp's
// Deferred). The caller checks arguments synchronously, then hands over a closure that touches only raw
// pointers into the typed arrays it was given; `pinned` holds references to those arrays until the promise settles,
// so garbage collection cannot free an array the caller dropped.
//
// What pinning cannot do: N-API has no way to stop JavaScript from transferring (detaching) an ArrayBuffer, e.g.
// with structuredClone(buf, { transfer: [buf] }) or postMessage, or from resizing a resizable one, while the work
// runs. A transferred buffer belongs to its new owner and is freed when that owner is collected; a shrunk resizable
// buffer's pages are decommitted at once (Node 20's V8): either way the running kernel would fault. So:
//   - the public Promise API (lib/kernels.ts, lib/kernels-mlstm.ts) never hands caller-owned memory to this layer:
//     it copies every input into a private array at the call and allocates the outputs itself;
//   - run_async refuses arrays on resizable ArrayBuffers (TypeError before anything is queued);
//   - this layer records each pinned array's data pointer and length when the call is queued and compares them when
//     the work completes: an array that was detached or resized meanwhile rejects the promise with a TypeError
//     naming the export, instead of resolving with results computed from (or written into) memory the caller no
//     longer owns. Raw binding callers must still not transfer a pinned array while its call is pending.
#pragma once
#include <napi.h>

#include <exception>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "binding/host_pins.h"
#include "kernels/threadpool.h"

namespace xlstm {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, const char* name, std::function<void()> work, std::vector<Napi::Value> pinned,
                std::function<Napi::Value(Napi::Env)> result, std::function<void(Napi::Env)> settled)
      : Napi::AsyncWorker(env, name),
        deferred_(Napi::Promise::Deferred::New(env)),
        name_(name),
        work_(std::move(work)),
        result_(std::move(result)),
        settled_(std::move(settled)) {
    for (size_t i = 0; i < pinned.size(); ++i) {
      const Napi::Value& v = pinned[i];
      if (!v.IsObject()) continue;  // null/undefined/numbers need no pinning
      pinned_.push_back(Napi::Persistent(v));
      if (v.IsTypedArray()) {
        views_.push_back({i, pinned_.size() - 1, View::Of(env, v)});
        pin_host_memory(views_.back().before.base);
      }
    }
  }
  ~PromiseWorker() override {
    for (const Pinned& p : views_) unpin_host_memory(p.before.base);
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    BackgroundWork background;  // this thread's parallel_for calls queue for a busy pool (kernels/threadpool.h)
    try {
      work_();
    } catch (const std::exception& e) {
      SetError(name_ + ": " + e.what());
    } catch (...) {
      SetError(name_ + ": unknown native error");
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (settled_) settled_(env);
    const std::string moved = MovedArrays(env);
    if (!moved.empty()) {
      deferred_.Reject(Napi::TypeError::New(env, name_ + ": " + moved).Value());
      return;
    }
    deferred_.Resolve(result_ ? result_(env) : env.Undefined());
  }
  void OnError(const Napi::Error& e) override {
    if (settled_) settled_(Env());
    deferred_.Reject(e.Value());
  }
  // When the environment goes away while the work runs (a worker thread terminated, the process exiting),
  // resolving the promise fails inside N-API and node-addon-api rethrows from its completion callback, which
  // would std::terminate the whole process. Nobody is left to observe the promise: swallow, and still free this.
  void OnWorkComplete(Napi::Env env, napi_status status) override {
    try {
      Napi::AsyncWorker::OnWorkComplete(env, status);  // calls Destroy() when it returns normally
      return;
    } catch (...) {
    }
    Destroy();
  }

 private:
  // Where a typed array's elements were when the call was queued (data null: empty or detached).
  struct View {
    void* data = nullptr;
    size_t length = 0;
    bool ok = false;
    // the ArrayBuffer's data pointer: the key that keeps an xlstm.scope from detaching it while the work runs
    // (host_pins.h; null when empty or detached)
    const void* base = nullptr;
    static View Of(napi_env env, napi_value v) {
      View r;
      napi_typedarray_type type;
      size_t offset = 0;
      r.ok = napi_get_typedarray_info(env, v, &type, &r.length, &r.data, nullptr, &offset) == napi_ok;
      if (r.ok && r.data) r.base = static_cast<const char*>(r.data) - offset;
      return r;
    }
    bool operator==(const View& o) const { return ok == o.ok && data == o.data && length == o.length; }
  };

  // "" when every pinned typed array still has the elements it had when the call was queued; otherwise which ones
  // were detached (transferred) or resized while the work ran.
  std::string MovedArrays(Napi::Env env) {
    std::string which;
    for (const Pinned& p : views_) {
      const View now = View::Of(env, pinned_[p.ref].Value());
      if (now == p.before) continue;
      which += (which.empty() ? "" : ", ") + std::string("#") + std::to_string(p.position) + " (" +
               std::to_string(p.before.length) + " elements, now " +
               (now.data == nullptr && now.length == 0 ? std::string("detached") : std::to_string(now.length)) + ")";
    }
    if (which.empty()) return which;
    return "array argument " + which + " was detached (transferred) or resized while the call was pending; its "
           "results are discarded (keep the arrays unchanged until the promise settles, or use lib/kernels, which "
           "copies them)";
  }

  Napi::Promise::Deferred deferred_;
  std::string name_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> result_;
  std::function<void(Napi::Env)> settled_;  // on the JS thread once the work is done, before the promise settles
  std::vector<Napi::Reference<Napi::Value>> pinned_;
  struct Pinned {
    size_t position;  // in the call site's `pinned` list (for recurrent / mlstm exports: the argument index)
    size_t ref;       // in pinned_
    View before;
  };
  std::vector<Pinned> views_;
};

// TypeError when a pinned typed array lives on a resizable (non-shared) ArrayBuffer: V8 decommits the pages a
// shrink gives up, so a resize while the work runs would fault in the kernel. (A growable SharedArrayBuffer only
// grows and is fine.) Checked before anything is queued.
inline void require_fixed_buffers(Napi::Env env, const char* name, const std::vector<Napi::Value>& pinned) {
  for (size_t i = 0; i < pinned.size(); ++i) {
    const Napi::Value& v = pinned[i];
    if (!v.IsTypedArray()) continue;
    napi_value ab = nullptr;
    napi_typedarray_type type;
    size_t length = 0;
    if (napi_get_typedarray_info(env, v, &type, &length, nullptr, &ab, nullptr) != napi_ok || ab == nullptr) continue;
    if (!Napi::Value(env, ab).IsArrayBuffer()) continue;  // a SharedArrayBuffer
    const Napi::Value resizable = Napi::Object(env, ab).Get("resizable");
    if (resizable.IsBoolean() && resizable.As<Napi::Boolean>().Value())
      throw Napi::TypeError::New(env, std::string(name) + ": array argument #" + std::to_string(i) +
                                          " is on a resizable ArrayBuffer, which could shrink under the running work; "
                                          "pass a copy on a fixed-length buffer (lib/kernels copies its inputs)");
  }
}

// Queue `work` and return its promise; `pinned` values stay alive until it settles. Typed arrays on resizable
// ArrayBuffers are refused (TypeError, thrown before anything is queued). `settled` (optional) runs on the JS thread
// when the work is done, whether it succeeded or threw, before the promise settles.
inline Napi::Value run_async(Napi::Env env, const char* name, std::function<void()> work,
                             std::vector<Napi::Value> pinned,
                             std::function<Napi::Value(Napi::Env)> result = nullptr,
                             std::function<void(Napi::Env)> settled = nullptr) {
  require_fixed_buffers(env, name, pinned);
  auto* w = new PromiseWorker(env, name, std::move(work), std::move(pinned), std::move(result), std::move(settled));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// Run `work` synchronously, turning C++ exceptions into JS errors naming the export.
template <class F>
inline void run_sync(Napi::Env env, const char* name, F&& work) {
  try {
    work();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::invalid_argument& e) {
    throw Napi::RangeError::New(env, std::string(name) + ": " + e.what());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string(name) + ": " + e.what());
  }
}

}  // namespace xlstm
