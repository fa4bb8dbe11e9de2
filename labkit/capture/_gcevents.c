/* The GC tracer's callback in C: the same records as gccallback.py's Python callback,
 * without a Python frame per collection.
 *
 * Recorder(chunks, current) keeps a write position into `current`, an array('q') of
 * 9-int64 records (gctrace.EVENT_FIELDS). Its `callback` is a builtin function for
 * gc.callbacks: "start" reads gc.get_count() and the clock, "stop" writes one record
 * (t_start, t_stop, generation, collected, uncollectable, thread id, count0..2). When
 * `current` is full it calls chunks.rollover(current) for the next array, once per chunk.
 * The clock is CLOCK_MONOTONIC, which is time.perf_counter_ns() on Linux.
 *
 * sample_until(...) is the heap sampler's loop in C (gctrace.GCTracer's thread): it sleeps
 * and reads RSS with the GIL released, takes the GIL only to read the interpreter's
 * figures, and returns to Python once per drain, not once per sample.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define STRIDE 9
#define SAMPLE_FIELDS 8 /* gctrace.HEAP_COLUMNS + TRACEMALLOC_COLUMNS */

typedef struct {
    PyObject_HEAD
    PyObject *chunks;
    PyObject *current;
    PyObject *get_count;
    Py_buffer view;
    int has_view;
    int64_t *data;
    Py_ssize_t capacity;
    Py_ssize_t pos;
    int64_t t0, c0, c1, c2;
} Recorder;

static PyObject *s_generation, *s_collected, *s_uncollectable, *s_rollover;
static PyObject *m_get_count, *m_allocated_blocks;

static int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
set_current(Recorder *self, PyObject *buf)
{
    Py_buffer view;
    if (PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE) < 0)
        return -1;
    if (view.len < (Py_ssize_t)(STRIDE * sizeof(int64_t))
            || view.len % (STRIDE * sizeof(int64_t)) != 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "a chunk holds whole 9-int64 records");
        return -1;
    }
    if (self->has_view)
        PyBuffer_Release(&self->view);
    self->view = view;
    self->has_view = 1;
    self->data = (int64_t *)view.buf;
    self->capacity = view.len / (Py_ssize_t)(STRIDE * sizeof(int64_t));
    Py_INCREF(buf);
    Py_XSETREF(self->current, buf);
    return 0;
}

static int
info_int(PyObject *info, PyObject *key, int64_t *out)
{
    PyObject *v = PyDict_GetItemWithError(info, key);
    if (v == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetObject(PyExc_KeyError, key);
        return -1;
    }
    *out = PyLong_AsLongLong(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

/* CPython builds `info` afresh for each phase, keys in the order generation, collected,
 * uncollectable, as new strings: walking it by position skips three hash lookups (about
 * 600 instructions a collection). Any other shape falls back to the lookups. */
static int
info_fields(PyObject *info, int64_t *gen, int64_t *collected, int64_t *uncollectable)
{
    static const Py_ssize_t lengths[3] = {10, 9, 13};
    int64_t *out[3] = {gen, collected, uncollectable};
    PyObject *key, *value;
    Py_ssize_t i = 0, n = 0;
    if (PyDict_GET_SIZE(info) == 3) {
        while (n < 3 && PyDict_Next(info, &i, &key, &value)) {
            if (!PyUnicode_Check(key) || PyUnicode_GET_LENGTH(key) != lengths[n]
                    || PyUnicode_READ_CHAR(key, 0) != (n == 0 ? 'g' : n == 1 ? 'c' : 'u')
                    || !PyLong_Check(value))
                break;
            *out[n] = PyLong_AsLongLong(value);
            if (*out[n] == -1 && PyErr_Occurred())
                return -1;
            n++;
        }
        if (n == 3)
            return 0;
    }
    if (info_int(info, s_generation, gen) < 0 || info_int(info, s_collected, collected) < 0
            || info_int(info, s_uncollectable, uncollectable) < 0)
        return -1;
    return 0;
}

static PyObject *
on_gc(PyObject *self_, PyObject *const *args, Py_ssize_t nargs)
{
    Recorder *self = (Recorder *)self_;
    if (nargs != 2 || !PyUnicode_Check(args[0]) || !PyDict_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "callback(phase: str, info: dict)");
        return NULL;
    }
    if (PyUnicode_GET_LENGTH(args[0]) == 5) { /* "start" */
        PyObject *cnt = PyObject_CallNoArgs(self->get_count);
        if (cnt == NULL)
            return NULL;
        if (!PyTuple_Check(cnt) || PyTuple_GET_SIZE(cnt) != 3) {
            Py_DECREF(cnt);
            PyErr_SetString(PyExc_TypeError, "gc.get_count() is not a 3-tuple");
            return NULL;
        }
        self->c0 = PyLong_AsLongLong(PyTuple_GET_ITEM(cnt, 0));
        self->c1 = PyLong_AsLongLong(PyTuple_GET_ITEM(cnt, 1));
        self->c2 = PyLong_AsLongLong(PyTuple_GET_ITEM(cnt, 2));
        Py_DECREF(cnt);
        if (PyErr_Occurred())
            return NULL;
        self->t0 = now_ns();
        Py_RETURN_NONE;
    }
    int64_t t1 = now_ns(), gen, collected, uncollectable;
    if (self->data == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "recorder has no chunk");
        return NULL;
    }
    if (info_fields(args[1], &gen, &collected, &uncollectable) < 0)
        return NULL;
    int64_t *r = self->data + self->pos * STRIDE;
    r[0] = self->t0;
    r[1] = t1;
    r[2] = gen;
    r[3] = collected;
    r[4] = uncollectable;
    r[5] = (int64_t)PyThread_get_thread_ident();
    r[6] = self->c0;
    r[7] = self->c1;
    r[8] = self->c2;
    if (++self->pos == self->capacity) {
        PyObject *next = PyObject_CallMethodOneArg(self->chunks, s_rollover, self->current);
        if (next == NULL)
            return NULL;
        int rc = set_current(self, next);
        Py_DECREF(next);
        if (rc < 0)
            return NULL;
        self->pos = 0;
    }
    Py_RETURN_NONE;
}

static PyMethodDef on_gc_def = {
    "_labkit_gc_callback", (PyCFunction)(void (*)(void))on_gc, METH_FASTCALL,
    "gc.callbacks entry: records one collection into the recorder's chunk."
};

static int
Recorder_init(Recorder *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"chunks", "current", NULL};
    PyObject *chunks, *current;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO", kwlist, &chunks, &current))
        return -1;
    if (set_current(self, current) < 0)
        return -1;
    PyObject *gc = PyImport_ImportModule("gc");
    if (gc == NULL)
        return -1;
    PyObject *get_count = PyObject_GetAttrString(gc, "get_count");
    Py_DECREF(gc);
    if (get_count == NULL)
        return -1;
    Py_XSETREF(self->get_count, get_count);
    Py_INCREF(chunks);
    Py_XSETREF(self->chunks, chunks);
    self->pos = 0;
    return 0;
}

static void
Recorder_dealloc(Recorder *self)
{
    if (self->has_view)
        PyBuffer_Release(&self->view);
    Py_XDECREF(self->chunks);
    Py_XDECREF(self->current);
    Py_XDECREF(self->get_count);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
get_current(Recorder *self, void *closure)
{
    if (self->current == NULL)
        Py_RETURN_NONE;
    Py_INCREF(self->current);
    return self->current;
}

static int
put_current(Recorder *self, PyObject *value, void *closure)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "current cannot be deleted");
        return -1;
    }
    if (set_current(self, value) < 0)
        return -1;
    if (self->pos >= self->capacity)
        self->pos = 0;
    return 0;
}

static PyObject *
get_pos(Recorder *self, void *closure)
{
    return PyLong_FromSsize_t(self->pos);
}

static int
put_pos(Recorder *self, PyObject *value, void *closure)
{
    Py_ssize_t pos = value == NULL ? -1 : PyLong_AsSsize_t(value);
    if (pos == -1 && PyErr_Occurred())
        return -1;
    if (pos < 0 || pos >= self->capacity) {
        PyErr_SetString(PyExc_ValueError, "pos must be within the current chunk");
        return -1;
    }
    self->pos = pos;
    return 0;
}

static PyObject *
get_callback(Recorder *self, void *closure)
{
    /* A new function object each time; two compare equal (same self, same C function),
       so gc.callbacks.remove() takes any of them. */
    return PyCFunction_New(&on_gc_def, (PyObject *)self);
}

static PyGetSetDef Recorder_getset[] = {
    {"current", (getter)get_current, (setter)put_current, "the chunk being filled", NULL},
    {"pos", (getter)get_pos, (setter)put_pos, "records filled in the current chunk", NULL},
    {"callback", (getter)get_callback, NULL, "the gc.callbacks entry", NULL},
    {NULL}
};

static PyTypeObject RecorderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_gcevents.Recorder",
    .tp_basicsize = sizeof(Recorder),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Writes one record per collection into array('q') chunks.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Recorder_init,
    .tp_dealloc = (destructor)Recorder_dealloc,
    .tp_getset = Recorder_getset,
};


/* Resident bytes from /proc/self/statm (its second field, in pages); 0 when unreadable. */
static int64_t
statm_rss(int fd, int64_t page)
{
    char buf[128], *p, *end;
    if (fd < 0)
        return 0;
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    strtoll(buf, &p, 10);
    long long pages = strtoll(p, &end, 10);
    return end == p ? 0 : (int64_t)pages * page;
}

static int
int_of(PyObject *v, int64_t *out)
{
    *out = PyLong_AsLongLong(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

/* The interpreter's figures, GIL held: sys.getallocatedblocks() and gc.get_count(). */
static int
interpreter_figures(int64_t *r)
{
    PyObject *blocks = PyObject_CallNoArgs(m_allocated_blocks);
    if (blocks == NULL)
        return -1;
    int rc = int_of(blocks, &r[2]);
    Py_DECREF(blocks);
    if (rc < 0)
        return -1;
    PyObject *cnt = PyObject_CallNoArgs(m_get_count);
    if (cnt == NULL)
        return -1;
    if (!PyTuple_Check(cnt) || PyTuple_GET_SIZE(cnt) != 3) {
        Py_DECREF(cnt);
        PyErr_SetString(PyExc_TypeError, "gc.get_count() is not a 3-tuple");
        return -1;
    }
    rc = int_of(PyTuple_GET_ITEM(cnt, 0), &r[3]) < 0 || int_of(PyTuple_GET_ITEM(cnt, 1), &r[4]) < 0
        || int_of(PyTuple_GET_ITEM(cnt, 2), &r[5]) < 0 ? -1 : 0;
    Py_DECREF(cnt);
    return rc;
}

static PyObject *
sample_until(PyObject *module, PyObject *args)
{
    PyObject *samples;
    Py_ssize_t row, count;
    int statm_fd, wake_fd;
    long long page, interval_ns;
    if (!PyArg_ParseTuple(args, "OnniiLL", &samples, &row, &count, &statm_fd, &wake_fd,
                          &page, &interval_ns))
        return NULL;
    if (interval_ns <= 0) {
        PyErr_SetString(PyExc_ValueError, "interval_ns must be positive");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(samples, &view, PyBUF_WRITABLE) < 0)
        return NULL;
    const Py_ssize_t width = SAMPLE_FIELDS * (Py_ssize_t)sizeof(int64_t);
    if (view.len % width != 0 || row < 0 || count < 0 || row + count > view.len / width) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "rows outside the samples buffer");
        return NULL;
    }
    int64_t *data = (int64_t *)view.buf;
    struct timespec wait = {(time_t)(interval_ns / 1000000000), (long)(interval_ns % 1000000000)};
    Py_ssize_t taken = 0;
    int woken = 0;
    while (taken < count) {
        struct pollfd pfd = {wake_fd, POLLIN, 0};
        int rc, err = 0;
        int64_t t = 0, rss = 0;
        Py_BEGIN_ALLOW_THREADS
        rc = ppoll(&pfd, wake_fd >= 0 ? 1 : 0, &wait, NULL);
        if (rc == 0) {
            t = now_ns();
            rss = statm_rss(statm_fd, (int64_t)page);
        }
        else if (rc < 0)
            err = errno;
        Py_END_ALLOW_THREADS
        if (rc < 0 && err == EINTR) {
            if (PyErr_CheckSignals() < 0)
                goto error;
            continue;
        }
        if (rc != 0) { /* the wake descriptor: stop or pause */
            woken = 1;
            break;
        }
        int64_t *r = data + (row + taken) * SAMPLE_FIELDS;
        if (interpreter_figures(r) < 0)
            goto error;
        r[0] = t;
        r[1] = rss;
        taken++;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("ni", taken, woken);
error:
    PyBuffer_Release(&view);
    return NULL;
}

static PyMethodDef module_methods[] = {
    {"sample_until", sample_until, METH_VARARGS,
     "sample_until(samples, row, count, statm_fd, wake_fd, page, interval_ns) -> "
     "(taken, woken): every interval_ns, one heap sample (t_ns, rss_bytes, "
     "allocated_blocks, count0..2) into row, row+1, ... of the int64 buffer samples (8 "
     "fields a row); returns after count samples, or early when wake_fd is readable."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef gcevents_module = {
    PyModuleDef_HEAD_INIT, "_gcevents",
    "The GC tracer's callback and heap sampler in C (see labkit/capture/gccallback.py).",
    -1, module_methods
};

PyMODINIT_FUNC
PyInit__gcevents(void)
{
    if (PyType_Ready(&RecorderType) < 0)
        return NULL;
    s_generation = PyUnicode_InternFromString("generation");
    s_collected = PyUnicode_InternFromString("collected");
    s_uncollectable = PyUnicode_InternFromString("uncollectable");
    s_rollover = PyUnicode_InternFromString("rollover");
    if (!s_generation || !s_collected || !s_uncollectable || !s_rollover)
        return NULL;
    PyObject *gc = PyImport_ImportModule("gc"), *sys = PyImport_ImportModule("sys");
    if (gc == NULL || sys == NULL) {
        Py_XDECREF(gc);
        Py_XDECREF(sys);
        return NULL;
    }
    m_get_count = PyObject_GetAttrString(gc, "get_count");
    m_allocated_blocks = PyObject_GetAttrString(sys, "getallocatedblocks");
    Py_DECREF(gc);
    Py_DECREF(sys);
    if (m_get_count == NULL || m_allocated_blocks == NULL)
        return NULL;
    PyObject *m = PyModule_Create(&gcevents_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&RecorderType);
    if (PyModule_AddObject(m, "Recorder", (PyObject *)&RecorderType) < 0) {
        Py_DECREF(&RecorderType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "STRIDE", STRIDE) < 0
            || PyModule_AddIntConstant(m, "SAMPLE_FIELDS", SAMPLE_FIELDS) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
