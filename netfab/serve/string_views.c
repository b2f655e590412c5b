/* A TensorFlow op making a string tensor whose values point into a buffer: no copy per value.
 *
 *     views = op.netfab_string_views(buffer, starts, lengths)
 *     # buffer: tf.string [1] (request bodies, joined); starts, lengths: int64 [n]
 *     # views[i] == buffer[0][starts[i]:starts[i] + lengths[i]], as tf.strings.substr gives it
 *
 * tf.strings.substr copies each value into a string of its own, allocated on the heap past
 * tstring's 22 inline bytes (a title): in a batch of a few thousand rows that is most of what
 * fab serve spends on strings beside the model. A VIEW tstring is a pointer and a length,
 * which TensorFlow's string kernels (StringLookup, the text front end) read like any other.
 * The views are only valid while `buffer` is: netfab.serve.saved_model's FlatCaller holds the
 * buffer for the one model call that reads them (netfab/serve/string_views.py says more).
 * Written against TensorFlow's C API (kernels.h, ops.h), not its C++ headers, so it builds
 * with a plain C compiler in a fraction of a second; string_views.py compiles it on first use.
 */
#include <stdint.h>

/* ops.h declares these with C++'s struct names only; C needs the typedefs first. */
typedef struct TF_DimensionHandle TF_DimensionHandle;
typedef struct TF_OpDefinitionBuilder TF_OpDefinitionBuilder;
typedef struct TF_ShapeHandle TF_ShapeHandle;
typedef struct TF_ShapeInferenceContext TF_ShapeInferenceContext;

#include "tensorflow/c/kernels.h"
#include "tensorflow/c/ops.h"
#include "tensorflow/c/tf_status.h"
#include "tensorflow/c/tf_tensor.h"
#include "tensorflow/core/platform/ctstring.h"

#define OP "NetfabStringViews"

static void *create(TF_OpKernelConstruction *context) { return NULL; }

static void delete_kernel(void *kernel) {}

/* Slices outside the buffer are refused, not read: the op checks what its caller computed. */
static int within(const int64_t *starts, const int64_t *lengths, int64_t n, int64_t size) {
    for (int64_t i = 0; i < n; i++)
        if (starts[i] < 0 || lengths[i] < 0 || starts[i] > size || lengths[i] > size - starts[i])
            return 0;
    return 1;
}

static void compute(void *kernel, TF_OpKernelContext *context) {
    TF_Status *status = TF_NewStatus();
    TF_Tensor *buffer = NULL, *starts = NULL, *lengths = NULL, *views = NULL;
    TF_GetInput(context, 0, &buffer, status);
    if (TF_GetCode(status) == TF_OK)
        TF_GetInput(context, 1, &starts, status);
    if (TF_GetCode(status) == TF_OK)
        TF_GetInput(context, 2, &lengths, status);
    if (TF_GetCode(status) != TF_OK)
        goto done;
    if (TF_NumDims(buffer) != 1 || TF_Dim(buffer, 0) != 1 || TF_NumDims(starts) != 1 ||
        TF_NumDims(lengths) != 1 || TF_Dim(starts, 0) != TF_Dim(lengths, 0)) {
        TF_SetStatus(status, TF_INVALID_ARGUMENT, OP ": buffer must be [1], starts and lengths [n] each");
        goto done;
    }
    int64_t n = TF_Dim(starts, 0);
    /* TF_GetInput shares the input's buffer (TF_TensorFromTensor: Tensor::CopyFrom, no copy), so
     * `data` is the caller's tensor's memory, not a copy that TF_DeleteTensor below would free. */
    const TF_TString *whole = (const TF_TString *)TF_TensorData(buffer);
    const char *data = TF_TString_GetDataPointer(whole);
    const int64_t *start = (const int64_t *)TF_TensorData(starts);
    const int64_t *length = (const int64_t *)TF_TensorData(lengths);
    if (!within(start, length, n, (int64_t)TF_TString_GetSize(whole))) {
        TF_SetStatus(status, TF_INVALID_ARGUMENT, OP ": a slice lies outside the buffer");
        goto done;
    }
    views = TF_AllocateOutput(context, 0, TF_STRING, &n, 1, (size_t)n * sizeof(TF_TString), status);
    if (TF_GetCode(status) != TF_OK)
        goto done;
    TF_TString *values = (TF_TString *)TF_TensorData(views);
    for (int64_t i = 0; i < n; i++)
        TF_TString_AssignView(&values[i], data + start[i], (size_t)length[i]);
done:
    if (TF_GetCode(status) != TF_OK)
        TF_OpKernelContext_Failure(context, status);
    TF_DeleteTensor(buffer);
    TF_DeleteTensor(starts);
    TF_DeleteTensor(lengths);
    TF_DeleteTensor(views);
    TF_DeleteStatus(status);
}

static void shape(TF_ShapeInferenceContext *context, TF_Status *status) {
    TF_ShapeHandle *starts = TF_NewShapeHandle();
    TF_ShapeInferenceContextGetInput(context, 1, starts, status);
    if (TF_GetCode(status) == TF_OK)
        TF_ShapeInferenceContextSetOutput(context, 0, starts, status);
    TF_DeleteShapeHandle(starts);
}

/* tf.load_op_library runs this as it loads the library: the op and its CPU kernel registered. */
__attribute__((constructor)) static void register_op(void) {
    TF_Status *status = TF_NewStatus();
    TF_OpDefinitionBuilder *op = TF_NewOpDefinitionBuilder(OP);
    TF_OpDefinitionBuilderAddInput(op, "buffer: string");
    TF_OpDefinitionBuilderAddInput(op, "starts: int64");
    TF_OpDefinitionBuilderAddInput(op, "lengths: int64");
    TF_OpDefinitionBuilderAddOutput(op, "views: string");
    TF_OpDefinitionBuilderSetShapeInferenceFunction(op, &shape);
    TF_RegisterOpDefinition(op, status);
    if (TF_GetCode(status) == TF_OK)
        TF_RegisterKernelBuilder(OP, TF_NewKernelBuilder(OP, "CPU", &create, &compute, &delete_kernel), status);
    TF_DeleteStatus(status);
}
