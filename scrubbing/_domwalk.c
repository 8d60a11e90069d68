/* The DOM walk's common nodes in C: the twin of the loop in domwalk.DomWalker._kids_walker for the nodes
 * no DOM rule touches. It drives the walk's stack of child lists and scrubs, itself, the text of text,
 * comment and CDATA nodes and the attributes of elements outside any rule, with the same look-ups (the
 * text scrubber's cache, then its lookup() on a miss) and the same report entries. Every other node (under
 * a mask, an element a rule may match, anything not shaped as rrweb writes it) goes to the Python walk of
 * that one node, which pushes its child lists onto the same stack: the rules live in Python only.
 * tests/test_scrubbing_walk_in_c.py holds the two walks to the same events, state and report. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

enum { KIND_TEXT = 0, KIND_URL = 1 };      /* domwalk._ATTR_KIND's values: the rest go to attr_value() */
enum { NO_RULES = 0, SIMPLE_RULES = 1 };   /* domwalk._common_nodes' rules mode; any other: all in Python */

static PyObject *k_type, *k_text_content, *k_is_style, *k_id, *k_tag_name, *k_attributes, *k_child_nodes;
static PyObject *loc_text, *loc_comment, *loc_css, *loc_attr, *zero;

typedef struct {
    PyObject *stack, *walk_kids;
    PyObject *cache, *lookup, *add, *url_cache, *attr_kind, *attr_value, *by_tag, *tagless, *masked_attrs;
    Py_ssize_t min_len;
    long rules;
    long document_node, element_node, text_node, cdata_node, comment_node;  /* rrweb's, from scrubbing.events */
} Walk;

/* node[key], as Python's [] reads it: a borrowed reference, or NULL with KeyError set. */
static PyObject *required(PyObject *node, PyObject *key) {
    PyObject *v = PyDict_GetItemWithError(node, key);
    if (!v && !PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, key);
    return v;
}

/* The text scrubber's answer for s: (scrubbed, rule ids) or None; a new reference, NULL on error. */
static PyObject *looked_up(Walk *w, PyObject *s) {
    PyObject *r = PyDict_GetItemWithError(w->cache, s);
    if (r) return Py_NewRef(r);
    if (PyErr_Occurred()) return NULL;
    return PyObject_CallOneArg(w->lookup, s);
}

/* container[key] = answer's scrubbed text, and one report entry per rule id at loc. */
static int put_scrubbed(Walk *w, PyObject *container, PyObject *key, PyObject *answer, PyObject *loc) {
    if (!PyTuple_Check(answer) || PyTuple_GET_SIZE(answer) != 2) {
        PyErr_SetString(PyExc_TypeError, "the text scrubber's answer is not (text, rules)");
        return -1;
    }
    if (PyDict_SetItem(container, key, PyTuple_GET_ITEM(answer, 0)) < 0) return -1;
    PyObject *rules = PySequence_Fast(PyTuple_GET_ITEM(answer, 1), "rule ids");
    if (!rules) return -1;
    int failed = 0;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(rules) && !failed; i++) {
        PyObject *args[2] = {PySequence_Fast_GET_ITEM(rules, i), loc};
        PyObject *done = PyObject_Vectorcall(w->add, args, 2, NULL);
        if (done) Py_DECREF(done); else failed = 1;
    }
    Py_DECREF(rules);
    return failed ? -1 : 0;
}

/* The Python walk of these nodes (a list), under pid / inh / ctx: it pushes their child lists itself. */
static int in_python(Walk *w, PyObject *kids, PyObject *pid, PyObject *inh, PyObject *ctx) {
    PyObject *args[4] = {kids, pid, inh, ctx};
    PyObject *done = PyObject_Vectorcall(w->walk_kids, args, 4, NULL);
    if (!done) return -1;
    Py_DECREF(done);
    return 0;
}

static int one_in_python(Walk *w, PyObject *node, PyObject *pid, PyObject *inh, PyObject *ctx) {
    PyObject *kids = PyList_New(1);
    if (!kids) return -1;
    PyList_SET_ITEM(kids, 0, Py_NewRef(node));
    int r = in_python(w, kids, pid, inh, ctx);
    Py_DECREF(kids);
    return r;
}

/* 1 when s is ASCII without a capital letter: the tag the rules' tables are keyed by, as it is. */
static int lower_ascii(PyObject *s) {
    if (!PyUnicode_IS_ASCII(s)) return 0;
    const char *c = (const char *)PyUnicode_DATA(s);
    for (Py_ssize_t i = 0; i < PyUnicode_GET_LENGTH(s); i++)
        if (c[i] >= 'A' && c[i] <= 'Z') return 0;
    return 1;
}

/* 1 when an element (its tag a str) is one of the common ones (no rule can match it, attributes of strings and other
 * scalars), 0 when the Python walk must take it, -1 on error. Reads only. */
static int common_element(Walk *w, PyObject *tag, PyObject *attrs) {
    if (!PyDict_CheckExact(attrs)) return 0;
    if (w->rules == SIMPLE_RULES) {
        if (!lower_ascii(tag)) return 0;
        if (PyDict_GetItemWithError(w->by_tag, tag)) return 0;
        if (PyErr_Occurred()) return -1;
    } else if (w->rules != NO_RULES) {
        return 0;
    }
    Py_ssize_t pos = 0;
    PyObject *name, *value;
    while (PyDict_Next(attrs, &pos, &name, &value)) {
        if (PyDict_CheckExact(value) || PyList_CheckExact(value)) return 0;  /* not an rrweb shape */
        if (w->rules == SIMPLE_RULES) {
            int hit = PySet_Contains(w->tagless, name);
            if (hit) return hit < 0 ? -1 : 0;
        }
    }
    return 1;
}

/* An element's attributes outside any rule (flags 0, no masked attribute names), in place. */
static int scrub_attributes(Walk *w, PyObject *attrs) {
    Py_ssize_t pos = 0;
    PyObject *name, *value;
    while (PyDict_Next(attrs, &pos, &name, &value)) {
        if (!PyUnicode_CheckExact(value) || PyUnicode_GET_LENGTH(value) == 0) continue;
        PyObject *kind_obj = PyDict_GetItemWithError(w->attr_kind, name);
        if (!kind_obj && PyErr_Occurred()) return -1;
        long kind = kind_obj ? PyLong_AsLong(kind_obj) : KIND_TEXT;
        if (kind == -1 && PyErr_Occurred()) return -1;
        if (kind == KIND_TEXT && PyUnicode_GET_LENGTH(value) < w->min_len) continue;
        if (kind == KIND_URL) {
            PyObject *known = PyDict_GetItemWithError(w->url_cache, value);
            if (known == Py_None) continue;  /* a URL nothing in it matches */
            if (!known && PyErr_Occurred()) return -1;
        }
        Py_INCREF(name);
        Py_INCREF(value);
        int r = 0;
        if (kind == KIND_TEXT) {
            PyObject *answer = looked_up(w, value);
            if (!answer) r = -1;
            else if (answer != Py_None) r = put_scrubbed(w, attrs, name, answer, loc_attr);
            Py_XDECREF(answer);
        } else {
            PyObject *args[4] = {name, value, zero, Py_None};
            PyObject *scrubbed = PyObject_Vectorcall(w->attr_value, args, 4, NULL);
            if (!scrubbed) r = -1;
            else if (scrubbed != value) r = PyDict_SetItem(attrs, name, scrubbed);
            Py_XDECREF(scrubbed);
        }
        Py_DECREF(name);
        Py_DECREF(value);
        if (r < 0) return -1;
    }
    return 0;
}

static int push(Walk *w, PyObject *kids, PyObject *pid, PyObject *inh, PyObject *ctx) {
    PyObject *entry = PyTuple_Pack(4, kids, pid, inh, ctx);
    if (!entry) return -1;
    int r = PyList_Append(w->stack, entry);
    Py_DECREF(entry);
    return r;
}

/* One node of a child list under nothing inherited (inh 0). */
static int walk_node(Walk *w, PyObject *node, PyObject *pid, PyObject *inh, PyObject *ctx) {
    if (!PyDict_CheckExact(node)) return one_in_python(w, node, pid, inh, ctx);
    PyObject *type_obj = required(node, k_type);
    if (!type_obj) return -1;
    if (!PyLong_CheckExact(type_obj)) return one_in_python(w, node, pid, inh, ctx);
    int overflow;
    long type = PyLong_AsLongAndOverflow(type_obj, &overflow);
    if (type == -1 && PyErr_Occurred()) return -1;
    if (type == w->text_node || type == w->cdata_node || type == w->comment_node) {
        PyObject *text = required(node, k_text_content);
        if (!text) return -1;
        if (!PyUnicode_CheckExact(text) || PyUnicode_GET_LENGTH(text) < w->min_len) return 0;
        PyObject *answer = looked_up(w, text);
        if (!answer) return -1;
        int r = 0;
        if (answer != Py_None) {
            PyObject *is_style = PyDict_GetItemWithError(node, k_is_style);
            int css = is_style ? PyObject_IsTrue(is_style) : (PyErr_Occurred() ? -1 : 0);
            if (css < 0) r = -1;
            else r = put_scrubbed(w, node, k_text_content, answer,
                                  css ? loc_css : type == w->text_node ? loc_text : loc_comment);
        }
        Py_DECREF(answer);
        return r;
    }
    if (type == w->element_node) {
        PyObject *nid = required(node, k_id);
        if (!nid) return -1;
        PyObject *tag = required(node, k_tag_name);
        if (!tag) return -1;
        if (!PyUnicode_CheckExact(tag)) return one_in_python(w, node, pid, inh, ctx);  /* raises as Python does */
        PyObject *attrs = required(node, k_attributes);
        if (!attrs) return -1;
        int common = common_element(w, tag, attrs);
        if (common <= 0) return common < 0 ? -1 : one_in_python(w, node, pid, inh, ctx);
        Py_INCREF(nid);
        Py_INCREF(attrs);
        int r = 0;
        if (w->rules == SIMPLE_RULES && PyDict_GET_SIZE(w->masked_attrs)) {  /* a rule that no longer matches */
            r = PyDict_Contains(w->masked_attrs, nid);
            if (r > 0) r = PyDict_DelItem(w->masked_attrs, nid);
        }
        if (r >= 0) r = scrub_attributes(w, attrs);
        if (r >= 0) {
            PyObject *kids = required(node, k_child_nodes);
            if (!kids) r = -1;
            else {
                int any = PyObject_IsTrue(kids);
                r = any <= 0 ? any : push(w, kids, nid, zero, ctx);
            }
        }
        Py_DECREF(attrs);
        Py_DECREF(nid);
        return r < 0 ? -1 : 0;
    }
    if (type == w->document_node) {
        PyObject *kids = required(node, k_child_nodes);
        if (!kids) return -1;
        int any = PyObject_IsTrue(kids);
        if (any <= 0) return any;
        PyObject *nid = required(node, k_id);
        return nid ? push(w, kids, nid, inh, ctx) : -1;
    }
    return 0;  /* a node type of no known shape: nothing in it is walked (as in Python) */
}

/* walk(stack, walk_kids, common_nodes): walks the stack of (child list, parent id, inherited flags, ctx)
 * entries to its end; see domwalk.DomWalker.walk. */
static PyObject *walk(PyObject *self, PyObject *args) {
    Walk w = {0};
    PyObject *common;
    if (!PyArg_ParseTuple(args, "O!OO!", &PyList_Type, &w.stack, &w.walk_kids, &PyTuple_Type, &common)) return NULL;
    if (!PyArg_ParseTuple(common, "O!OnOO!O!OlO!O!O!(lllll)", &PyDict_Type, &w.cache, &w.lookup, &w.min_len,
                          &w.add, &PyDict_Type, &w.url_cache, &PyDict_Type, &w.attr_kind, &w.attr_value, &w.rules,
                          &PyDict_Type, &w.by_tag, &PyFrozenSet_Type, &w.tagless, &PyDict_Type, &w.masked_attrs,
                          &w.document_node, &w.element_node, &w.text_node, &w.cdata_node, &w.comment_node))
        return NULL;
    Py_ssize_t n;
    while ((n = PyList_GET_SIZE(w.stack)) > 0) {
        PyObject *entry = Py_NewRef(PyList_GET_ITEM(w.stack, n - 1));
        if (PyList_SetSlice(w.stack, n - 1, n, NULL) < 0) { Py_DECREF(entry); return NULL; }
        if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 4) {
            Py_DECREF(entry);
            PyErr_SetString(PyExc_TypeError, "a walk stack entry is (kids, parent id, inherited flags, ctx)");
            return NULL;
        }
        PyObject *kids = PyTuple_GET_ITEM(entry, 0), *pid = PyTuple_GET_ITEM(entry, 1);
        PyObject *inh = PyTuple_GET_ITEM(entry, 2), *ctx = PyTuple_GET_ITEM(entry, 3);
        int r = 0;
        int inherited = !PyLong_CheckExact(inh) || PyLong_AsLong(inh) != 0;  /* under a mask or a rule */
        if (inherited || !PyList_CheckExact(kids)) {
            PyErr_Clear();
            r = in_python(&w, kids, pid, inh, ctx);
        } else {
            for (Py_ssize_t i = 0; i < PyList_GET_SIZE(kids) && r == 0; i++) {
                PyObject *node = Py_NewRef(PyList_GET_ITEM(kids, i));
                r = walk_node(&w, node, pid, inh, ctx);
                Py_DECREF(node);
            }
        }
        Py_DECREF(entry);
        if (r < 0) return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {{"walk", walk, METH_VARARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_domwalk", NULL, -1, methods};

PyMODINIT_FUNC PyInit__domwalk(void) {
    const char *names[] = {"type", "textContent", "isStyle", "id", "tagName", "attributes", "childNodes",
                           "dom.text", "dom.comment", "css", "dom.attr"};
    PyObject **slots[] = {&k_type, &k_text_content, &k_is_style, &k_id, &k_tag_name, &k_attributes,
                          &k_child_nodes, &loc_text, &loc_comment, &loc_css, &loc_attr};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!(*slots[i] = PyUnicode_InternFromString(names[i]))) return NULL;
    if (!(zero = PyLong_FromLong(0))) return NULL;
    return PyModule_Create(&module);
}
