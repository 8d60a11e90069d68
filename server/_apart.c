/* One walk over a parsed document: its msgpack (msgpack-python's bytes, use_bin_type=True) with every
 * string value replaced by the string placeholder and every id by the id placeholder; the strings, as
 * UTF-8 each ended by a NUL, and the ids, in the order of their placeholders. The C twin of
 * strings_apart._take, msgpack and the strings' join (tests/test_codec.py holds the two to the same bytes).
 * The document is only read: the walk calls no Python code, so nothing can change it meanwhile. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

enum { OK = 0, CANNOT_HOLD = 1, UNKNOWN_TYPE = 2, FAILED = -1 };

typedef struct {
    char *buf;
    Py_ssize_t len, cap;
} Buffer;

typedef struct {
    Buffer out;   /* the structure */
    Buffer text;  /* the strings' UTF-8, each ended by a NUL */
    Py_ssize_t strings;
    PyObject *ids, *id_keys;
    int max_depth;
    long long max_id;
} Walk;

static int grow(Buffer *b, Py_ssize_t need) {
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < need) cap *= 2;
    char *buf = PyMem_Realloc(b->buf, cap);
    if (!buf) { PyErr_NoMemory(); return FAILED; }
    b->buf = buf; b->cap = cap;
    return OK;
}

#define APPEND(b, src, n) do { if ((b)->cap - (b)->len < (Py_ssize_t)(n) && grow((b), (n)) < 0) return FAILED; \
    memcpy((b)->buf + (b)->len, (src), (n)); (b)->len += (n); } while (0)
#define PUT(w, src, n) APPEND(&(w)->out, src, n)

static int put_byte(Walk *w, unsigned char b) { PUT(w, &b, 1); return OK; }

static int put_be(Walk *w, unsigned char lead, unsigned long long v, int n) {
    unsigned char b[9]; b[0] = lead;
    for (int i = 0; i < n; i++) b[1 + i] = (unsigned char)(v >> (8 * (n - 1 - i)));
    PUT(w, b, 1 + n); return OK;
}

static int put_header(Walk *w, Py_ssize_t n, unsigned char fix, int fixmax, unsigned char h16, unsigned char h32) {
    if (n < fixmax) return put_byte(w, (unsigned char)(fix | n));
    if (n < 65536) return put_be(w, h16, (unsigned long long)n, 2);
    return put_be(w, h32, (unsigned long long)n, 4);
}

static int put_int(Walk *w, PyObject *o) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred()) return FAILED;
    if (overflow > 0) {
        unsigned long long u = PyLong_AsUnsignedLongLong(o);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) { PyErr_Clear(); return CANNOT_HOLD; }
        return put_be(w, 0xcf, u, 8);
    }
    if (overflow < 0) return CANNOT_HOLD;
    if (v >= 0) {
        if (v < 128) return put_byte(w, (unsigned char)v);
        if (v < 256) return put_be(w, 0xcc, (unsigned long long)v, 1);
        if (v < 65536) return put_be(w, 0xcd, (unsigned long long)v, 2);
        if (v < 4294967296LL) return put_be(w, 0xce, (unsigned long long)v, 4);
        return put_be(w, 0xcf, (unsigned long long)v, 8);
    }
    if (v >= -32) return put_byte(w, (unsigned char)(v & 0xff));
    if (v >= -128) return put_be(w, 0xd0, (unsigned long long)v, 1);
    if (v >= -32768) return put_be(w, 0xd1, (unsigned long long)v, 2);
    if (v >= -2147483648LL) return put_be(w, 0xd2, (unsigned long long)v, 4);
    return put_be(w, 0xd3, (unsigned long long)v, 8);
}

static int put_str(Walk *w, PyObject *o) {
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(o, &n);
    if (!s) { PyErr_Clear(); return CANNOT_HOLD; }  /* a lone surrogate */
    int r;
    if (n < 32) r = put_byte(w, (unsigned char)(0xa0 | n));
    else if (n < 256) r = put_be(w, 0xd9, (unsigned long long)n, 1);
    else if (n < 65536) r = put_be(w, 0xda, (unsigned long long)n, 2);
    else if (n <= 0xffffffffLL) r = put_be(w, 0xdb, (unsigned long long)n, 4);
    else return CANNOT_HOLD;
    if (r) return r;
    PUT(w, s, n);
    return OK;
}

static const unsigned char STRING_PLACEHOLDER[3] = {0xc7, 0x00, 0x02};
static const unsigned char ID_PLACEHOLDER[3] = {0xc7, 0x00, 0x03};

static int walk(Walk *w, PyObject *o, int depth);

/* A scalar, a key or a container: what msgpack writes for it (no placeholder). */
static int put_plain(Walk *w, PyObject *o, int depth) {
    PyTypeObject *t = Py_TYPE(o);
    if (t == &PyUnicode_Type) return put_str(w, o);
    if (t == &PyLong_Type) return put_int(w, o);
    if (t == &PyFloat_Type) {
        double d = PyFloat_AS_DOUBLE(o);
        unsigned long long u; memcpy(&u, &d, 8);
        return put_be(w, 0xcb, u, 8);
    }
    if (o == Py_None) return put_byte(w, 0xc0);
    if (o == Py_True) return put_byte(w, 0xc3);
    if (o == Py_False) return put_byte(w, 0xc2);
    if (t == &PyDict_Type || t == &PyList_Type) return walk(w, o, depth + 1);
    return UNKNOWN_TYPE;
}

static int take_string(Walk *w, PyObject *s) {
    Py_ssize_t n;
    const char *utf8 = PyUnicode_AsUTF8AndSize(s, &n);
    if (!utf8) { PyErr_Clear(); return CANNOT_HOLD; }  /* a lone surrogate */
    if (memchr(utf8, 0, n)) return CANNOT_HOLD;  /* a NUL: it ends a string in the text */
    APPEND(&w->text, utf8, n + 1);  /* with the NUL that ends the UTF-8 of a str */
    w->strings++;
    PUT(w, STRING_PLACEHOLDER, 3);
    return OK;
}

static int walk(Walk *w, PyObject *o, int depth) {
    if (depth > w->max_depth) return CANNOT_HOLD;
    int r;
    if (Py_TYPE(o) == &PyDict_Type) {
        if ((r = put_header(w, PyDict_GET_SIZE(o), 0x80, 16, 0xde, 0xdf))) return r;
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (PyDict_Next(o, &pos, &key, &value)) {
            if ((r = put_plain(w, key, depth))) return r;
            PyTypeObject *t = Py_TYPE(value);
            if (t == &PyUnicode_Type) {
                r = take_string(w, value);
            } else if (t == &PyLong_Type) {
                int is_id = PySet_Contains(w->id_keys, key);
                if (is_id < 0) return FAILED;
                if (is_id) {
                    int overflow = 0;
                    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
                    is_id = !overflow && v >= 0 && v <= w->max_id;
                }
                if (is_id) {
                    if (PyList_Append(w->ids, value) < 0) return FAILED;
                    PUT(w, ID_PLACEHOLDER, 3);
                    r = OK;
                } else {
                    r = put_int(w, value);
                }
            } else {
                r = put_plain(w, value, depth);
            }
            if (r) return r;
        }
        return OK;
    }
    /* a list (put_plain and split only pass dicts and lists) */
    Py_ssize_t n = PyList_GET_SIZE(o);
    if ((r = put_header(w, n, 0x90, 16, 0xdc, 0xdd))) return r;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(o); i++) {
        PyObject *value = PyList_GET_ITEM(o, i);
        r = Py_TYPE(value) == &PyUnicode_Type ? take_string(w, value) : put_plain(w, value, depth);
        if (r) return r;
    }
    return OK;
}

/* split(document, id_keys, max_depth, max_id) -> (structure, text, count of strings, ids), or None when
 * the document holds what this walk does not write (a type other than JSON's): the caller's Python walk
 * takes over. OverflowError for what v3 cannot hold (a number past 64 bits, nesting past max_depth, a lone
 * surrogate, a NUL in a string). */
static PyObject *split(PyObject *self, PyObject *args) {
    PyObject *document, *id_keys;
    Walk w = {0};
    if (!PyArg_ParseTuple(args, "OO!iL", &document, &PyFrozenSet_Type, &id_keys, &w.max_depth, &w.max_id))
        return NULL;
    if (Py_TYPE(document) != &PyDict_Type && Py_TYPE(document) != &PyList_Type)
        Py_RETURN_NONE;
    w.id_keys = id_keys;
    w.ids = PyList_New(0);
    PyObject *result = NULL;
    if (!w.ids) goto done;
    int r = walk(&w, document, 0);
    if (r == FAILED) goto done;
    if (r == CANNOT_HOLD) { PyErr_SetString(PyExc_OverflowError, "v3 cannot hold this document"); goto done; }
    if (r == UNKNOWN_TYPE) { result = Py_NewRef(Py_None); goto done; }
    result = Py_BuildValue("(y#y#nO)", w.out.buf ? w.out.buf : "", w.out.len, w.text.buf ? w.text.buf : "",
                           w.text.len, w.strings, w.ids);
done:
    PyMem_Free(w.out.buf);
    PyMem_Free(w.text.buf);
    Py_XDECREF(w.ids);
    return result;
}

static PyMethodDef methods[] = {{"split", split, METH_VARARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_apart", NULL, -1, methods};
PyMODINIT_FUNC PyInit__apart(void) { return PyModule_Create(&module); }
