/* Where each element of an OIP v2 BYTES tensor begins, and its length: one pass, in C.
 *
 *     from netfab.serve import _byte_elements
 *     found = numpy.empty((2, count), dtype=numpy.int64)
 *     _byte_elements.read(buffer, start, size, count, found)   # True: found[0] starts, found[1] lengths
 *
 * Each element is a 4-byte little-endian length, then that many bytes, so each one's place
 * depends on every length before it: a walk, which Python takes a step of bytecode per element
 * for and numpy can only approximate with passes over every byte (netfab/serve/oip_tensors.py,
 * the reading used when this module is not built). Here it is a loop over the lengths alone.
 * False when the bytes do not hold exactly `count` elements; the caller's Python walk then names
 * the element at fault. Built by setup.py (optional: without a C compiler netfab reads in numpy).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static PyObject *read_elements(PyObject *self, PyObject *args) {
    Py_buffer data, out;
    Py_ssize_t start, size, count;
    if (!PyArg_ParseTuple(args, "y*nnnw*", &data, &start, &size, &count, &out))
        return NULL;
    PyObject *result = NULL;
    if (start < 0 || size < 0 || count < 0 || start > data.len || size > data.len - start) {
        PyErr_SetString(PyExc_ValueError, "start and size must lie within the buffer");
    } else if (count > out.len / (2 * (Py_ssize_t)sizeof(int64_t)) || out.itemsize != sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError, "out must be a C-contiguous int64 array of 2 x count");
    } else {
        const unsigned char *bytes = (const unsigned char *)data.buf + start;
        int64_t *starts = (int64_t *)out.buf, *lengths = starts + count;
        Py_ssize_t position = 0, i = 0;
        for (; i < count; i++) {
            if (size - position < 4)
                break;
            const unsigned char *at = bytes + position;
            uint32_t length = (uint32_t)at[0] | (uint32_t)at[1] << 8 | (uint32_t)at[2] << 16 | (uint32_t)at[3] << 24;
            if ((uint64_t)length > (uint64_t)(size - position - 4))
                break;
            starts[i] = start + position + 4;
            lengths[i] = length;
            position += 4 + (Py_ssize_t)length;
        }
        result = PyBool_FromLong(i == count && position == size);
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"read", read_elements, METH_VARARGS,
     "read(buffer, start, size, count, out) -> bool: the elements of buffer[start:start + size] "
     "into out[0] (starts, in buffer) and out[1] (lengths); True when they are exactly count"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_byte_elements", NULL, -1, methods};

PyMODINIT_FUNC PyInit__byte_elements(void) { return PyModule_Create(&module); }
