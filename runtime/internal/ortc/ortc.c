#include "ortc.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Positions in the OrtApi table (see ortc.h).
enum {
  SLOT_GetErrorMessage = 2,
  SLOT_CreateEnv = 3,
  SLOT_CreateSession = 7,
  SLOT_CreateSessionFromArray = 8,
  SLOT_CreateSessionOptions = 10,
  SLOT_EnableProfiling = 14,
  SLOT_DisableCpuMemArena = 19,
  SLOT_SetSessionLogId = 20,
  SLOT_SetSessionLogSeverityLevel = 22,
  SLOT_SetSessionGraphOptimizationLevel = 23,
  SLOT_SetIntraOpNumThreads = 24,
  SLOT_CreateRunOptions = 39,
  SLOT_CreateTensorAsOrtValue = 48,
  SLOT_GetTensorMutableData = 51,
  SLOT_GetTensorElementType = 60,
  SLOT_GetDimensionsCount = 61,
  SLOT_GetDimensions = 62,
  SLOT_GetTensorTypeAndShape = 65,
  SLOT_CreateMemoryInfo = 68,
  SLOT_CreateCpuMemoryInfo = 69,
  SLOT_AllocatorFree = 76,
  SLOT_GetAllocatorWithDefaultOptions = 78,
  SLOT_ReleaseStatus = 93,
  SLOT_ReleaseMemoryInfo = 94,
  SLOT_ReleaseSession = 95,
  SLOT_ReleaseValue = 96,
  SLOT_ReleaseRunOptions = 97,
  SLOT_ReleaseTensorTypeAndShapeInfo = 99,
  SLOT_ReleaseSessionOptions = 100,
  SLOT_SessionEndProfiling = 110,
  SLOT_GetAvailableProviders = 125,
  SLOT_ReleaseAvailableProviders = 126,
  SLOT_AddSessionConfigEntry = 130,
  SLOT_CreateAllocator = 131,
  SLOT_ReleaseAllocator = 132,
  SLOT_RunWithBinding = 133,
  SLOT_CreateIoBinding = 134,
  SLOT_ReleaseIoBinding = 135,
  SLOT_BindInput = 136,
  SLOT_BindOutput = 137,
  SLOT_BindOutputToDevice = 138,
  SLOT_GetBoundOutputValues = 140,
  SLOT_ClearBoundInputs = 141,
  SLOT_ClearBoundOutputs = 142,
  SLOT_SynchronizeBoundInputs = 202,
  SLOT_SynchronizeBoundOutputs = 203,
  SLOT_SessionOptionsAppendExecutionProvider_CUDA_V2 = 204,
  SLOT_CreateCUDAProviderOptions = 205,
  SLOT_UpdateCUDAProviderOptions = 206,
  SLOT_ReleaseCUDAProviderOptions = 208,
};

typedef void* status_t;  // OrtStatus*; NULL is success

static void* const* api;  // the OrtApi table
static const char* (*get_version)(void);

// OrtApiBase: { GetApi(version), GetVersionString() }.
typedef struct {
  void* const* (*GetApi)(uint32_t version);
  const char* (*GetVersionString)(void);
} api_base;

#define FN(slot, ret, ...) ((ret(*)(__VA_ARGS__))api[SLOT_##slot])

static char* dupmsg(const char* s) {
  size_t n = strlen(s);
  char* out = malloc(n + 1);
  if (out) memcpy(out, s, n + 1);
  return out;
}

// take turns an OrtStatus into a malloc'ed message and releases it.
static char* take(status_t st) {
  if (!st) return NULL;
  char* msg = dupmsg(FN(GetErrorMessage, const char*, status_t)(st));
  FN(ReleaseStatus, void, status_t)(st);
  return msg;
}

char* ortc_open(const char* path, uint32_t version) {
  char buf[512];
  if (api) return NULL;
  void* h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
  if (!h) return dupmsg(dlerror());
  api_base* (*base)(void) = (api_base * (*)(void)) dlsym(h, "OrtGetApiBase");
  if (!base) return dupmsg("the library has no OrtGetApiBase symbol");
  const api_base* b = base();
  void* const* t = b->GetApi(version);
  if (!t) {
    snprintf(buf, sizeof buf, "ONNX Runtime %s does not provide C API version %u", b->GetVersionString(), version);
    return dupmsg(buf);
  }
  get_version = b->GetVersionString;
  api = t;
  return NULL;
}

const char* ortc_version(void) { return get_version ? get_version() : ""; }

char* ortc_create_env(int level, ortc_handle* out) {
  return take(FN(CreateEnv, status_t, int, const char*, void**)(level, "dartc", out));
}

char* ortc_create_session_options(ortc_handle* out) {
  return take(FN(CreateSessionOptions, status_t, void**)(out));
}
void ortc_release_session_options(ortc_handle so) { FN(ReleaseSessionOptions, void, void*)(so); }
char* ortc_set_intra_op_threads(ortc_handle so, int n) {
  return take(FN(SetIntraOpNumThreads, status_t, void*, int)(so, n));
}
char* ortc_set_optimization_level(ortc_handle so, int level) {
  return take(FN(SetSessionGraphOptimizationLevel, status_t, void*, int)(so, level));
}
char* ortc_disable_cpu_mem_arena(ortc_handle so) { return take(FN(DisableCpuMemArena, status_t, void*)(so)); }
char* ortc_add_config_entry(ortc_handle so, const char* key, const char* value) {
  return take(FN(AddSessionConfigEntry, status_t, void*, const char*, const char*)(so, key, value));
}
char* ortc_enable_profiling(ortc_handle so, const char* prefix) {
  return take(FN(EnableProfiling, status_t, void*, const char*)(so, prefix));
}
char* ortc_set_log_severity(ortc_handle so, int level) {
  return take(FN(SetSessionLogSeverityLevel, status_t, void*, int)(so, level));
}
char* ortc_set_log_id(ortc_handle so, const char* id) {
  return take(FN(SetSessionLogId, status_t, void*, const char*)(so, id));
}
char* ortc_append_cuda(ortc_handle so, const char* const* keys, const char* const* values, size_t n) {
  void* cuda = NULL;
  char* err = take(FN(CreateCUDAProviderOptions, status_t, void**)(&cuda));
  if (err) return err;
  err = take(FN(UpdateCUDAProviderOptions, status_t, void*, const char* const*, const char* const*, size_t)(
      cuda, keys, values, n));
  if (!err) err = take(FN(SessionOptionsAppendExecutionProvider_CUDA_V2, status_t, void*, void*)(so, cuda));
  FN(ReleaseCUDAProviderOptions, void, void*)(cuda);
  return err;
}

char* ortc_create_session(ortc_handle env, const char* path, ortc_handle so, ortc_handle* out) {
  return take(FN(CreateSession, status_t, void*, const char*, void*, void**)(env, path, so, out));
}
char* ortc_create_session_from_bytes(ortc_handle env, const void* data, size_t len, ortc_handle so,
                                     ortc_handle* out) {
  return take(
      FN(CreateSessionFromArray, status_t, void*, const void*, size_t, void*, void**)(env, data, len, so, out));
}
void ortc_release_session(ortc_handle s) { FN(ReleaseSession, void, void*)(s); }

char* ortc_end_profiling(ortc_handle s, char** out) {
  void* alloc = NULL;
  char* err = take(FN(GetAllocatorWithDefaultOptions, status_t, void**)(&alloc));
  if (err) return err;
  char* file = NULL;
  err = take(FN(SessionEndProfiling, status_t, void*, void*, char**)(s, alloc, &file));
  if (err) return err;
  *out = dupmsg(file ? file : "");
  if (file) FN(AllocatorFree, status_t, void*, void*)(alloc, file);
  return NULL;
}

// OrtDeviceAllocator = 0, OrtArenaAllocator = 1; OrtMemTypeDefault = 0.
char* ortc_create_cpu_memory_info(ortc_handle* out) {
  return take(FN(CreateCpuMemoryInfo, status_t, int, int, void**)(1, 0, out));
}
char* ortc_create_memory_info(const char* name, int id, ortc_handle* out) {
  return take(FN(CreateMemoryInfo, status_t, const char*, int, int, int, void**)(name, 1, id, 0, out));
}
void ortc_release_memory_info(ortc_handle mi) { FN(ReleaseMemoryInfo, void, void*)(mi); }
char* ortc_create_allocator(ortc_handle session, ortc_handle mi, ortc_handle* out) {
  return take(FN(CreateAllocator, status_t, void*, void*, void**)(session, mi, out));
}
void ortc_release_allocator(ortc_handle a) { FN(ReleaseAllocator, void, void*)(a); }
char* ortc_default_allocator(ortc_handle* out) {
  return take(FN(GetAllocatorWithDefaultOptions, status_t, void**)(out));
}

char* ortc_create_tensor(ortc_handle alloc, const int64_t* shape, size_t rank, int elem, ortc_handle* out) {
  return take(FN(CreateTensorAsOrtValue, status_t, void*, const int64_t*, size_t, int, void**)(alloc, shape, rank,
                                                                                                elem, out));
}
char* ortc_tensor_data(ortc_handle value, void** out) {
  return take(FN(GetTensorMutableData, status_t, void*, void**)(value, out));
}
char* ortc_tensor_shape(ortc_handle value, int* elem, int64_t* dims, size_t cap, size_t* rank) {
  void* info = NULL;
  char* err = take(FN(GetTensorTypeAndShape, status_t, void*, void**)(value, &info));
  if (err) return err;
  err = take(FN(GetTensorElementType, status_t, void*, int*)(info, elem));
  if (!err) err = take(FN(GetDimensionsCount, status_t, void*, size_t*)(info, rank));
  if (!err && *rank > cap) err = dupmsg("tensor rank exceeds the buffer");
  if (!err) err = take(FN(GetDimensions, status_t, void*, int64_t*, size_t)(info, dims, *rank));
  FN(ReleaseTensorTypeAndShapeInfo, void, void*)(info);
  return err;
}
void ortc_release_value(ortc_handle v) { FN(ReleaseValue, void, void*)(v); }

char* ortc_create_run_options(ortc_handle* out) { return take(FN(CreateRunOptions, status_t, void**)(out)); }
void ortc_release_run_options(ortc_handle ro) { FN(ReleaseRunOptions, void, void*)(ro); }
char* ortc_create_io_binding(ortc_handle session, ortc_handle* out) {
  return take(FN(CreateIoBinding, status_t, void*, void**)(session, out));
}
void ortc_release_io_binding(ortc_handle b) { FN(ReleaseIoBinding, void, void*)(b); }
char* ortc_bind_input(ortc_handle b, const char* name, ortc_handle value) {
  return take(FN(BindInput, status_t, void*, const char*, void*)(b, name, value));
}
char* ortc_bind_output(ortc_handle b, const char* name, ortc_handle value) {
  return take(FN(BindOutput, status_t, void*, const char*, void*)(b, name, value));
}
char* ortc_bind_output_to_device(ortc_handle b, const char* name, ortc_handle mi) {
  return take(FN(BindOutputToDevice, status_t, void*, const char*, void*)(b, name, mi));
}
char* ortc_run_with_binding(ortc_handle session, ortc_handle ro, ortc_handle b) {
  return take(FN(RunWithBinding, status_t, void*, void*, void*)(session, ro, b));
}
char* ortc_bound_outputs(ortc_handle b, ortc_handle alloc, ortc_handle** values, size_t* n) {
  return take(FN(GetBoundOutputValues, status_t, void*, void*, void***, size_t*)(b, alloc, values, n));
}
void ortc_free_bound_outputs(ortc_handle alloc, ortc_handle* values) {
  if (values) FN(AllocatorFree, status_t, void*, void*)(alloc, values);
}
void ortc_clear_bound_inputs(ortc_handle b) { FN(ClearBoundInputs, void, void*)(b); }
void ortc_clear_bound_outputs(ortc_handle b) { FN(ClearBoundOutputs, void, void*)(b); }
char* ortc_sync_bound_inputs(ortc_handle b) { return take(FN(SynchronizeBoundInputs, status_t, void*)(b)); }
char* ortc_sync_bound_outputs(ortc_handle b) { return take(FN(SynchronizeBoundOutputs, status_t, void*)(b)); }

char* ortc_available_providers(char*** out, int* n) {
  return take(FN(GetAvailableProviders, status_t, char***, int*)(out, n));
}
void ortc_release_providers(char** p, int n) { take(FN(ReleaseAvailableProviders, status_t, char**, int)(p, n)); }

// CUDA copies go through the CUDA runtime the CUDA provider itself loads
// (libcudart.so.13), found by dlopen on first use.
static int (*cuda_memcpy)(void*, const void*, size_t, int);
static int (*cuda_memset)(void*, int, size_t);
static int (*cuda_sync)(void);
static const char* (*cuda_error_string)(int);

static char* load_cudart(void) {
  if (cuda_memcpy) return NULL;
  void* h = dlopen("libcudart.so.13", RTLD_NOW | RTLD_GLOBAL);
  if (!h) return dupmsg(dlerror());
  cuda_memset = (int (*)(void*, int, size_t))dlsym(h, "cudaMemset");
  cuda_error_string = (const char* (*)(int))dlsym(h, "cudaGetErrorString");
  cuda_sync = (int (*)(void))dlsym(h, "cudaDeviceSynchronize");
  cuda_memcpy = (int (*)(void*, const void*, size_t, int))dlsym(h, "cudaMemcpy");
  if (!cuda_memcpy || !cuda_memset || !cuda_sync || !cuda_error_string) {
    cuda_memcpy = NULL;
    return dupmsg("libcudart.so.13 lacks cudaMemcpy, cudaMemset, cudaDeviceSynchronize or cudaGetErrorString");
  }
  return NULL;
}

// cuda_check turns a CUDA error code into a message.
static char* cuda_check(const char* op, int rc) {
  if (rc == 0) return NULL;
  char buf[256];
  snprintf(buf, sizeof buf, "%s: %s", op, cuda_error_string(rc));
  return dupmsg(buf);
}

// cudaMemset and device-to-device cudaMemcpy may return before the device
// has finished, and ONNX Runtime's own stream does not wait for the
// default one: every copy here ends with a device synchronization, so the
// next run reads what the copy wrote.
static char* cuda_done(const char* op, int rc) {
  char* err = cuda_check(op, rc);
  if (err) return err;
  return cuda_check("cudaDeviceSynchronize", cuda_sync());
}

char* ortc_zero(int kind, void* dst, size_t n) {
  if (n == 0) return NULL;
  if (kind == 0) {
    memset(dst, 0, n);
    return NULL;
  }
  char* err = load_cudart();
  if (err) return err;
  return cuda_done("cudaMemset", cuda_memset(dst, 0, n));
}

char* ortc_copy(int kind, void* dst, const void* src, size_t n) {
  if (n == 0) return NULL;
  if (kind == 0) {
    memcpy(dst, src, n);
    return NULL;
  }
  char* err = load_cudart();
  if (err) return err;
  return cuda_done("cudaMemcpy", cuda_memcpy(dst, src, n, 4 /* cudaMemcpyDefault */));
}

char* ortc_copy_chunks(int kind, void* dst, const void* src, const int64_t* chunks, size_t count) {
  char* d = dst;
  const char* s = src;
  if (kind == 0) {
    for (size_t i = 0; i < count; i++) {
      const int64_t* c = chunks + 3 * i;
      if (c[2] > 0) memcpy(d + c[0], s + c[1], (size_t)c[2]);
    }
    return NULL;
  }
  char* err = load_cudart();
  if (err) return err;
  for (size_t i = 0; i < count; i++) {
    const int64_t* c = chunks + 3 * i;
    if (c[2] == 0) continue;
    err = cuda_check("cudaMemcpy", cuda_memcpy(d + c[0], s + c[1], (size_t)c[2], 4 /* cudaMemcpyDefault */));
    if (err) return err;
  }
  return cuda_check("cudaDeviceSynchronize", cuda_sync());
}

char* ortc_probe(const char* name) {
  void* h = dlopen(name, RTLD_LAZY | RTLD_LOCAL);
  if (!h) return dupmsg(dlerror());
  dlclose(h);
  return NULL;
}
