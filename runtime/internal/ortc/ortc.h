// Declarations dartc needs from ONNX Runtime's C API, written for this
// package instead of including onnxruntime_c_api.h (neither the npm package
// onnxruntime-node nor the onnxruntime-gpu wheel ships the header).
//
// ONNX Runtime exposes its C API as one table of function pointers, OrtApi,
// returned by OrtGetApiBase()->GetApi(version). Entries are only ever
// appended, so an entry's position is fixed across releases; ortc_slot.go
// lists the positions used here, each checked against the header of API
// version 24 by compiling offsetof(OrtApi, Name)/sizeof(void*).

#ifndef DARTC_ORTC_H
#define DARTC_ORTC_H

#include <stddef.h>
#include <stdint.h>

// Opaque handles: every ONNX Runtime object is passed around as void*.
typedef void* ortc_handle;

// ortc_open loads the library at path and fetches API version `version`.
// It returns NULL on success, else a message the caller frees with free().
char* ortc_open(const char* path, uint32_t version);

// ortc_version returns ONNX Runtime's version string (static storage).
const char* ortc_version(void);

// ortc_call_status: every wrapper below returns NULL on success, else a
// malloc'ed message (the OrtStatus's text, released here).

char* ortc_create_env(int level, ortc_handle* out);
char* ortc_create_session_options(ortc_handle* out);
void ortc_release_session_options(ortc_handle so);
char* ortc_set_intra_op_threads(ortc_handle so, int n);
char* ortc_set_optimization_level(ortc_handle so, int level);
char* ortc_disable_cpu_mem_arena(ortc_handle so);
char* ortc_add_config_entry(ortc_handle so, const char* key, const char* value);
char* ortc_enable_profiling(ortc_handle so, const char* prefix);
char* ortc_set_log_severity(ortc_handle so, int level);
char* ortc_set_log_id(ortc_handle so, const char* id);
char* ortc_append_cuda(ortc_handle so, const char* const* keys, const char* const* values, size_t n);

char* ortc_create_session(ortc_handle env, const char* path, ortc_handle so, ortc_handle* out);
char* ortc_create_session_from_bytes(ortc_handle env, const void* data, size_t len, ortc_handle so, ortc_handle* out);
void ortc_release_session(ortc_handle s);
char* ortc_end_profiling(ortc_handle s, char** out);

char* ortc_create_cpu_memory_info(ortc_handle* out);
char* ortc_create_memory_info(const char* name, int id, ortc_handle* out);
void ortc_release_memory_info(ortc_handle mi);
char* ortc_create_allocator(ortc_handle session, ortc_handle mi, ortc_handle* out);
void ortc_release_allocator(ortc_handle a);
char* ortc_default_allocator(ortc_handle* out);

char* ortc_create_tensor(ortc_handle alloc, const int64_t* shape, size_t rank, int elem, ortc_handle* out);
char* ortc_tensor_data(ortc_handle value, void** out);
char* ortc_tensor_shape(ortc_handle value, int* elem, int64_t* dims, size_t cap, size_t* rank);
void ortc_release_value(ortc_handle v);

char* ortc_create_run_options(ortc_handle* out);
void ortc_release_run_options(ortc_handle ro);
char* ortc_create_io_binding(ortc_handle session, ortc_handle* out);
void ortc_release_io_binding(ortc_handle b);
char* ortc_bind_input(ortc_handle b, const char* name, ortc_handle value);
char* ortc_bind_output(ortc_handle b, const char* name, ortc_handle value);
char* ortc_bind_output_to_device(ortc_handle b, const char* name, ortc_handle mi);
char* ortc_run_with_binding(ortc_handle session, ortc_handle ro, ortc_handle b);
char* ortc_bound_outputs(ortc_handle b, ortc_handle alloc, ortc_handle** values, size_t* n);
void ortc_free_bound_outputs(ortc_handle alloc, ortc_handle* values);
void ortc_clear_bound_inputs(ortc_handle b);
void ortc_clear_bound_outputs(ortc_handle b);
char* ortc_sync_bound_inputs(ortc_handle b);
char* ortc_sync_bound_outputs(ortc_handle b);

char* ortc_available_providers(char*** out, int* n);
void ortc_release_providers(char** p, int n);

// Copies between tensors' memory. kind 0: both in host memory (memcpy);
// kind 1: CUDA memory on either side (cudaMemcpy, cudaMemcpyDefault).
char* ortc_copy(int kind, void* dst, const void* src, size_t n);
char* ortc_zero(int kind, void* dst, size_t n);
// ortc_copy_chunks copies count chunks from src to dst in one call: chunk
// i is chunks[3i+2] bytes from src+chunks[3i+1] to dst+chunks[3i].
char* ortc_copy_chunks(int kind, void* dst, const void* src, const int64_t* chunks, size_t count);

// ortc_probe reports whether the dynamic loader finds and loads a library
// by name (dlopen, then dlclose).
char* ortc_probe(const char* name);

#endif
