// Binding layer: run kernel work off the JS thread and return a Promise (sharp's baton + node-llama-cpp's
// Deferred). The caller checks arguments synchronously, then hands over a closure that touches only raw
// pointers; the typed arrays behind those pointers are pinned by references until the promise settles.
// Callers must not modify the arrays while the promise is pending.
#pragma once
#include <napi.h>

#include <exception>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace xlstm {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, const char* name, std::function<void()> work, std::vector<Napi::Value> pinned,
                std::function<Napi::Value(Napi::Env)> result)
      : Napi::AsyncWorker(env, name),
        deferred_(Napi::Promise::Deferred::New(env)),
        name_(name),
        work_(std::move(work)),
        result_(std::move(result)) {
    for (auto& v : pinned)
      if (v.IsObject()) pinned_.push_back(Napi::Persistent(v));  // null/undefined/numbers need no pinning
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
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
    deferred_.Resolve(result_ ? result_(env) : env.Undefined());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }
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
  Napi::Promise::Deferred deferred_;
  std::string name_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> result_;
  std::vector<Napi::Reference<Napi::Value>> pinned_;
};

// Queue `work` and return its promise; `pinned` values stay alive until it settles.
inline Napi::Value run_async(Napi::Env env, const char* name, std::function<void()> work,
                             std::vector<Napi::Value> pinned,
                             std::function<Napi::Value(Napi::Env)> result = nullptr) {
  auto* w = new PromiseWorker(env, name, std::move(work), std::move(pinned), std::move(result));
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
