/* shmq._shmq: the CPython extension under the `shmq` package, over shmq.h only.
 *
 * Types: Queue, Producer, Consumer, Message, and _Payload, the buffer exporter
 * behind every payload (and claim) memoryview. The package's __init__.py
 * defines the exception classes and hands them over with _set_errors().
 *
 * Speed: the data path (send, try_send, receive, try_receive, ack,
 * receive_batch, send_many) parses its arguments with METH_FASTCALL and never
 * releases the GIL unless the call has to wait. Waiting happens in slices of at
 * most SLICE_NS with the GIL released, checking for signals between slices, so
 * Ctrl-C raises KeyboardInterrupt within a slice and nothing is lost: a slice
 * that returned a message is never followed by a signal check before the
 * message is handed over.
 *
 * Payload lifetime: a payload points into the ring, valid until the message is
 * acked (or the consumer closed). Every memoryview handed out is built on a
 * _Payload exporter that counts its live exports; ack releases the view it
 * handed out and refuses (BufferError) while any other buffer taken from the
 * payload is alive, so Python code can never read memory the ring reuses.
 *
 * Threads: one thread at a time may use a producer or a consumer (shmq.h). A
 * handle is `busy` only while a GIL-released C call runs on it; any other
 * thread's call meanwhile raises RuntimeError, and close() from another thread
 * waits for the running slice (at most SLICE_NS) before it closes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "shmq/shmq.h"

/* The longest a GIL-released wait runs before looking for signals. */
#define SLICE_NS ((int64_t)50 * 1000 * 1000)
/* Names are at most 63 characters (shmq.h); a buffer with room to spare. */
#define NAME_BUFFER 128
/* receive_batch takes messages in chunks of this many from the C API. */
#define BATCH_CHUNK 64

/* ------------------------------------------------------------------------ */
/* Exceptions                                                                */

/* The classes shmq/__init__.py passes to _set_errors(): the base and one per code. */
static PyObject* error_base = NULL;
static PyObject* error_by_code = NULL; /* dict: int code -> class */

static PyObject* error_class(shmq_status_t status) {
  if (error_by_code != NULL) {
    PyObject* key = PyLong_FromLong((long)status);
    if (key == NULL) return NULL;
    PyObject* cls = PyDict_GetItemWithError(error_by_code, key);
    Py_DECREF(key);
    if (cls != NULL) return cls;
    if (PyErr_Occurred()) return NULL;
  }
  return error_base != NULL ? error_base : PyExc_RuntimeError;
}

/* Raises the class of `status` with `message` (UTF-8, undecodable bytes
 * replaced) and .status set; `sequence` >= 0 also sets .sequence (Timeout).
 * Returns NULL for the caller to return. */
static PyObject* raise_status_seq(shmq_status_t status, const char* message, int64_t sequence) {
  PyObject* cls = error_class(status);
  if (cls == NULL) return NULL;
  PyObject* text = PyUnicode_DecodeUTF8(message, (Py_ssize_t)strlen(message), "replace");
  if (text == NULL) return NULL;
  PyObject* exc;
  if (cls == PyExc_RuntimeError) {
    exc = PyObject_CallOneArg(cls, text);
  } else {
    exc = PyObject_CallFunction(cls, "Oi", text, (int)status);
  }
  Py_DECREF(text);
  if (exc == NULL) return NULL;
  if (sequence >= 0) {
    PyObject* seq = PyLong_FromLongLong(sequence);
    if (seq == NULL || PyObject_SetAttrString(exc, "sequence", seq) < 0) {
      Py_XDECREF(seq);
      Py_DECREF(exc);
      return NULL;
    }
    Py_DECREF(seq);
  }
  PyErr_SetObject((PyObject*)Py_TYPE(exc), exc);
  Py_DECREF(exc);
  return NULL;
}

static PyObject* raise_status_msg(shmq_status_t status, const char* message) {
  return raise_status_seq(status, message, -1);
}

/* A data-path status: its short name says it all (shmq_last_error is not set). */
static PyObject* raise_status(shmq_status_t status) {
  return raise_status_msg(status, shmq_status_str(status));
}

/* A set-up call's status: shmq_last_error() says what is wrong, with names. */
static PyObject* raise_setup(shmq_status_t status) {
  const char* message = shmq_last_error();
  if (message == NULL || message[0] == '\0') message = shmq_status_str(status);
  return raise_status_msg(status, message);
}

static PyObject* raise_invalid(const char* format, ...) {
  char text[512];
  va_list args;
  va_start(args, format);
  PyOS_vsnprintf(text, sizeof text, format, args);
  va_end(args);
  return raise_status_msg(SHMQ_INVALID_ARGUMENT, text);
}

/* ------------------------------------------------------------------------ */
/* Argument helpers                                                          */

/* Parses a METH_FASTCALL | METH_KEYWORDS call: `params` names every parameter
 * in order; the first `positional` may come positionally, the first `required`
 * must come. out[i]: borrowed, NULL when not given. */
static int parse_args(const char* function, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                      const char* const* params, int count, int positional, int required, PyObject** out) {
  for (int i = 0; i < count; i++) out[i] = NULL;
  if (nargs > positional) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most %d positional argument%s (%zd given)", function, positional,
                 positional == 1 ? "" : "s", nargs);
    return -1;
  }
  for (Py_ssize_t i = 0; i < nargs; i++) out[i] = args[i];
  if (kwnames != NULL) {
    const Py_ssize_t keywords = PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < keywords; k++) {
      PyObject* key = PyTuple_GET_ITEM(kwnames, k);
      int found = -1;
      for (int i = 0; i < count; i++) {
        if (PyUnicode_CompareWithASCIIString(key, params[i]) == 0) {
          found = i;
          break;
        }
      }
      if (found < 0) {
        PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", function, key);
        return -1;
      }
      if (out[found] != NULL) {
        PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", function, params[found]);
        return -1;
      }
      out[found] = args[nargs + k];
    }
  }
  for (int i = 0; i < required; i++) {
    if (out[i] == NULL) {
      PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", function, params[i]);
      return -1;
    }
  }
  return 0;
}

/* A name argument as a C string (valid while `object` lives). NULL with an
 * exception set when it is not a str; embedded NULs make it an invalid name. */
static const char* name_arg(PyObject* object, const char* what) {
  if (!PyUnicode_Check(object)) {
    PyErr_Format(PyExc_TypeError, "%s must be a str, not %.100s", what, Py_TYPE(object)->tp_name);
    return NULL;
  }
  Py_ssize_t size = 0;
  const char* text = PyUnicode_AsUTF8AndSize(object, &size);
  if (text == NULL) return NULL;
  if ((size_t)size != strlen(text)) {
    raise_status_msg(SHMQ_INVALID_NAME, "a name cannot contain NUL characters");
    return NULL;
  }
  return text;
}

/* A namespace argument: None (or absent) means $SHMQ_NAMESPACE, else "default". */
static int namespace_arg(PyObject* object, const char** out) {
  *out = NULL;
  if (object == NULL || object == Py_None) return 0;
  *out = name_arg(object, "namespace");
  return *out == NULL ? -1 : 0;
}

static int u64_arg(PyObject* object, const char* what, uint64_t* out) {
  if (object == NULL || object == Py_None) return 0; /* keep the default */
  if (!PyLong_Check(object)) {
    PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", what, Py_TYPE(object)->tp_name);
    return -1;
  }
  int overflow = 0;
  const long long value = PyLong_AsLongLongAndOverflow(object, &overflow);
  if (value == -1 && PyErr_Occurred()) return -1;
  if (overflow > 0) {
    const unsigned long long big = PyLong_AsUnsignedLongLong(object);
    if (big == (unsigned long long)-1 && PyErr_Occurred()) {
      PyErr_Clear();
      raise_invalid("%s is out of range", what);
      return -1;
    }
    *out = big;
    return 0;
  }
  if (overflow < 0 || value < 0) {
    raise_invalid("%s must not be negative", what);
    return -1;
  }
  *out = (uint64_t)value;
  return 0;
}

static int u32_arg(PyObject* object, const char* what, uint32_t* out) {
  uint64_t value = *out;
  if (u64_arg(object, what, &value) < 0) return -1;
  if (value > UINT32_MAX) {
    raise_invalid("%s is out of range", what);
    return -1;
  }
  *out = (uint32_t)value;
  return 0;
}

static int bool_arg(PyObject* object, bool* out) {
  if (object == NULL) return 0;
  const int truth = PyObject_IsTrue(object);
  if (truth < 0) return -1;
  *out = truth != 0;
  return 0;
}

/* Seconds (int or float, >= 0) to nanoseconds; None (or absent): SHMQ_FOREVER. */
static int timeout_arg(PyObject* object, const char* what, int64_t* out) {
  *out = SHMQ_FOREVER;
  if (object == NULL || object == Py_None) return 0;
  const double seconds = PyFloat_AsDouble(object);
  if (seconds == -1.0 && PyErr_Occurred()) return -1;
  if (!(seconds >= 0)) {
    raise_invalid("%s must be None or a number of seconds >= 0", what);
    return -1;
  }
  if (seconds >= 9.2e9) return 0; /* beyond int64 nanoseconds: forever */
  *out = (int64_t)(seconds * 1e9);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Time and waiting                                                          */

static int64_t monotonic_ns(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* -1: forever; else the monotonic time when `timeout_ns` ends. */
static int64_t deadline_after(int64_t timeout_ns) {
  return timeout_ns < 0 ? -1 : monotonic_ns() + timeout_ns;
}

/* The state every producer and consumer object starts with (see the top:
 * Threads). */
typedef struct {
  PyObject_HEAD
  int open;           /* not closed yet */
  int busy;           /* a GIL-released C call runs on the handle */
  int close_pending;  /* close() waits for that call to return */
  const char* kind;   /* "producer" or "consumer", for messages */
} HandleBase;

static PyObject* raise_closed(HandleBase* handle) {
  return raise_invalid("the %s is closed", handle->kind);
}

static PyObject* raise_busy(HandleBase* handle) {
  PyErr_Format(PyExc_RuntimeError,
               "the %s is in use by another thread (one thread at a time may use a %s)", handle->kind,
               handle->kind);
  return NULL;
}

/* One slice of a wait: a blocking C call bounded by slice_ns, run without the GIL. */
typedef shmq_status_t (*SliceCall)(void* context, int64_t slice_ns);

/* Repeats `call` in slices until it returns something other than
 * SHMQ_TIMEOUT, or `deadline` passes (*status = SHMQ_TIMEOUT). Returns -1 with
 * an exception set when a signal handler raised (KeyboardInterrupt) or the
 * handle was closed meanwhile (by a signal handler, or another thread between slices). */
static int wait_in_slices(HandleBase* handle, SliceCall call, void* context, int64_t deadline,
                          shmq_status_t* status) {
  for (;;) {
    int64_t slice = SLICE_NS;
    if (deadline >= 0) {
      const int64_t left = deadline - monotonic_ns();
      if (left <= 0) {
        *status = SHMQ_TIMEOUT;
        return 0;
      }
      if (left < slice) slice = left;
    }
    shmq_status_t result;
    handle->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    result = call(context, slice);
    Py_END_ALLOW_THREADS
    handle->busy = 0;
    if (result != SHMQ_TIMEOUT) {
      *status = result;
      return 0;
    }
    /* Nothing came of this slice: only now may a signal end the wait. */
    if (PyErr_CheckSignals() < 0) return -1;
    if (!handle->open || handle->close_pending) {
      raise_invalid("the %s was closed while a call waited", handle->kind);
      return -1;
    }
  }
}

/* close() from one thread while another waits in a slice: let the slice end. */
static void wait_until_idle(HandleBase* handle) {
  if (!handle->busy) return;
  handle->close_pending = 1;
  while (handle->busy) {
    Py_BEGIN_ALLOW_THREADS
    struct timespec pause = {0, 1000 * 1000};
    nanosleep(&pause, NULL);
    Py_END_ALLOW_THREADS
  }
  handle->close_pending = 0;
}

/* ------------------------------------------------------------------------ */
/* Bytes-like arguments                                                      */

typedef struct {
  const char* data;
  size_t size;
  Py_buffer view;
  int has_view;
} Data;

static int data_get(PyObject* object, Data* out) {
  if (PyBytes_CheckExact(object)) {
    out->data = PyBytes_AS_STRING(object);
    out->size = (size_t)PyBytes_GET_SIZE(object);
    out->has_view = 0;
    return 0;
  }
  if (PyObject_GetBuffer(object, &out->view, PyBUF_SIMPLE) < 0) return -1;
  out->data = out->view.buf;
  out->size = (size_t)out->view.len;
  out->has_view = 1;
  return 0;
}

static void data_release(Data* data) {
  if (data->has_view) {
    PyBuffer_Release(&data->view);
    data->has_view = 0;
  }
}

/* ------------------------------------------------------------------------ */
/* _Payload: the buffer exporter behind payload and claim memoryviews        */

typedef struct PayloadObject {
  PyObject_HEAD
  /* A consumer's payload: a strong reference to the consumer, and a link in
   * its list of exporters (ack_up_to and close look for live exports there).
   * A claim: NULL (the producer holds the exporter; see orphan_producer). */
  PyObject* consumer;
  struct PayloadObject** list_head;
  struct PayloadObject* prev;
  struct PayloadObject* next;
  void* buf;
  Py_ssize_t size;
  Py_ssize_t exports; /* live Py_buffers taken from this exporter */
  uint64_t position;  /* the message's log position (consumer payloads) */
  int valid;          /* 0 once acked, committed, aborted or closed: no new buffers */
  int readonly;
  /* A claim whose producer object went away while buffers were still taken
   * from it: the producer handle is closed once the last of them goes. Of a
   * batch's records, one exporter holds the handle and the others that still
   * have buffers keep that one alive (orphan_keeper), so it goes last. */
  shmq_producer_t* orphan_producer;
  PyObject* orphan_keeper;
} PayloadObject;

static PyTypeObject PayloadType;
static char empty_payload[1];

static int Payload_getbuffer(PayloadObject* self, Py_buffer* view, int flags) {
  if (!self->valid) {
    PyErr_SetString(PyExc_ValueError,
                    "the payload was released (the message was acknowledged, or the claim committed)");
    view->obj = NULL;
    return -1;
  }
  void* buf = self->buf != NULL ? self->buf : empty_payload;
  if (PyBuffer_FillInfo(view, (PyObject*)self, buf, self->size, self->readonly, flags) < 0) return -1;
  self->exports++;
  return 0;
}

static void Payload_releasebuffer(PayloadObject* self, Py_buffer* view) {
  (void)view;
  self->exports--;
}

static void payload_unlink(PayloadObject* self) {
  if (self->list_head == NULL) return;
  if (self->prev != NULL) self->prev->next = self->next;
  else *self->list_head = self->next;
  if (self->next != NULL) self->next->prev = self->prev;
  self->list_head = NULL;
  self->prev = self->next = NULL;
}

static void Payload_dealloc(PayloadObject* self) {
  payload_unlink(self);
  if (self->orphan_producer != NULL) shmq_producer_close(self->orphan_producer);
  Py_XDECREF(self->orphan_keeper);
  Py_XDECREF(self->consumer);
  PyObject_Free(self);
}

static PyBufferProcs Payload_as_buffer = {
    .bf_getbuffer = (getbufferproc)Payload_getbuffer,
    .bf_releasebuffer = (releasebufferproc)Payload_releasebuffer,
};

static PyTypeObject PayloadType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmq._shmq._Payload",
    .tp_basicsize = sizeof(PayloadObject),
    .tp_dealloc = (destructor)Payload_dealloc,
    .tp_as_buffer = &Payload_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The memory of a payload or a claim, exported to memoryviews; released at ack or commit.",
};

static PayloadObject* payload_new(void* buf, size_t size, int readonly) {
  PayloadObject* self = PyObject_New(PayloadObject, &PayloadType);
  if (self == NULL) return NULL;
  self->consumer = NULL;
  self->list_head = NULL;
  self->prev = self->next = NULL;
  self->buf = buf;
  self->size = (Py_ssize_t)size;
  self->exports = 0;
  self->position = 0;
  self->valid = 1;
  self->readonly = readonly;
  self->orphan_producer = NULL;
  self->orphan_keeper = NULL;
  return self;
}

static PyObject* memoryview_release = NULL; /* the method descriptor memoryview.release */

/* view.release(), without a method lookup (a vectorcall of the descriptor). */
static PyObject* call_release(PyObject* view) {
  return PyObject_Vectorcall(memoryview_release, &view, 1, NULL);
}

/* Releases the memoryview `*view` (ours) and checks that nothing else still
 * holds a buffer of `exporter`. On failure: BufferError, and *view cleared
 * when it was released (the next access makes a fresh one). */
static int release_view(PyObject** view, PayloadObject* exporter, const char* what) {
  if (*view != NULL) {
    PyObject* result = call_release(*view);
    if (result == NULL) return -1; /* BufferError: something holds a buffer of the view itself */
    Py_DECREF(result);
  }
  if (exporter != NULL && exporter->exports > 0) {
    Py_CLEAR(*view);
    PyErr_Format(PyExc_BufferError,
                 "a slice or other buffer taken from the %s is still alive; copy it (bytes()) before "
                 "releasing it",
                 what);
    return -1;
  }
  return 0;
}

/* A memoryview that is already released: what m.payload is after the ack. */
static PyObject* released_view(void) {
  PyObject* view = PyMemoryView_FromMemory(empty_payload, 0, PyBUF_READ);
  if (view == NULL) return NULL;
  PyObject* result = call_release(view);
  if (result == NULL) {
    Py_DECREF(view);
    return NULL;
  }
  Py_DECREF(result);
  return view;
}

/* ------------------------------------------------------------------------ */
/* Queue                                                                     */

typedef struct {
  PyObject_HEAD
  shmq_queue_t* queue;
  PyObject* name;
  PyObject* ns;
} QueueObject;

static PyTypeObject QueueType;
static PyTypeObject ProducerType;
static PyTypeObject ConsumerType;
static PyTypeObject MessageType;

static PyObject* queue_wrap(shmq_queue_t* handle) {
  QueueObject* self = PyObject_New(QueueObject, &QueueType);
  if (self == NULL) {
    shmq_queue_close(handle);
    return NULL;
  }
  self->queue = handle;
  self->name = PyUnicode_FromString(shmq_queue_name(handle));
  self->ns = PyUnicode_FromString(shmq_queue_namespace(handle));
  if (self->name == NULL || self->ns == NULL) {
    Py_DECREF(self);
    return NULL;
  }
  return (PyObject*)self;
}

static void Queue_dealloc(QueueObject* self) {
  shmq_queue_close(self->queue);
  Py_XDECREF(self->name);
  Py_XDECREF(self->ns);
  PyObject_Free(self);
}

static int queue_check_open(QueueObject* self) {
  if (self->queue != NULL) return 0;
  raise_invalid("the queue is closed");
  return -1;
}

/* The options create() and segment_bytes() take, as keywords. */
#define QUEUE_OPTION_KEYWORDS "capacity", "max_message", "durable", "mode", "max_producers", "max_groups", \
                              "max_consumers", "group"
#define QUEUE_OPTION_COUNT 8

/* group=: None (the creator's), a gid, or a group name from the group database. */
static int group_arg(PyObject* object, int64_t* out) {
  if (object == NULL || object == Py_None) return 0;
  if (PyUnicode_Check(object)) {
    Py_ssize_t length = 0;
    const char* name = PyUnicode_AsUTF8AndSize(object, &length);
    if (name == NULL) return -1;
    if (length == 0 || strlen(name) != (size_t)length) {
      raise_invalid("group must be a group name or a gid");
      return -1;
    }
    char buf[16384];
    struct group entry;
    struct group* found = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = getgrnam_r(name, &entry, buf, sizeof buf, &found);
    Py_END_ALLOW_THREADS
    if (rc != 0 || found == NULL) {
      raise_invalid("unknown group '%s' (a group name from the group database, or a gid)", name);
      return -1;
    }
    *out = (int64_t)found->gr_gid;
    return 0;
  }
  uint32_t gid = 0;
  if (u32_arg(object, "group", &gid) < 0) return -1;
  if (gid == UINT32_MAX) {
    raise_invalid("group %u is not a gid", gid);
    return -1;
  }
  *out = (int64_t)gid;
  return 0;
}

/* The delivery policy create() and open_or_create() take, as keywords (after the others). */
#define POLICY_KEYWORDS "max_deliveries", "dead_letter", "ack_timeout", "ttl"
#define POLICY_COUNT 4

/* A policy duration: None (or absent) for none, else seconds (int or float)
 * or a datetime.timedelta, above 0 (0 would read as none: None says so). */
static int policy_duration_arg(PyObject* object, const char* what, int64_t* out) {
  *out = 0;
  if (object == NULL || object == Py_None) return 0;
  double seconds;
  if (PyLong_Check(object) || PyFloat_Check(object)) {
    seconds = PyFloat_AsDouble(object);
  } else {
    PyObject* total = PyObject_CallMethod(object, "total_seconds", NULL); /* a timedelta */
    if (total == NULL) {
      PyErr_Clear();
      PyErr_Format(PyExc_TypeError, "%s must be None, a number of seconds or a timedelta, not %.100s", what,
                   Py_TYPE(object)->tp_name);
      return -1;
    }
    seconds = PyFloat_AsDouble(total);
    Py_DECREF(total);
  }
  if (seconds == -1.0 && PyErr_Occurred()) return -1;
  if (!(seconds > 0) || seconds >= 9.2e9) {
    raise_invalid("%s must be None (none) or a duration above 0 seconds and below 9.2e9", what);
    return -1;
  }
  *out = (int64_t)(seconds * 1e9);
  if (*out == 0) {
    raise_invalid("%s must be None (none) or at least 1 nanosecond", what);
    return -1;
  }
  return 0;
}

/* values: POLICY_KEYWORDS' values. The strings *policy points to are
 * borrowed from them (valid for the call). Sets options->policy. */
static int policy_from(PyObject* const* values, shmq_delivery_policy_t* policy, shmq_queue_options_t* options) {
  shmq_delivery_policy_init(policy);
  PyObject* max_deliveries = values[0];
  if (max_deliveries != NULL && max_deliveries != Py_None) {
    /* The C++ API's 0 means no limit; here None does, and 0 is a mistake. */
    if (!PyLong_Check(max_deliveries)) {
      PyErr_Format(PyExc_TypeError, "max_deliveries must be None or an int, not %.100s",
                   Py_TYPE(max_deliveries)->tp_name);
      return -1;
    }
    int overflow = 0;
    const long long value = PyLong_AsLongLongAndOverflow(max_deliveries, &overflow);
    if (value == -1 && PyErr_Occurred()) return -1;
    if (overflow < 0 || (overflow == 0 && value <= 0)) {
      raise_invalid("max_deliveries must be None (no limit) or 1..%u", SHMQ_MAX_DELIVERIES_LIMIT);
      return -1;
    }
    if (u32_arg(max_deliveries, "max_deliveries", &policy->max_deliveries) < 0) return -1;
  }
  if (values[1] != NULL && values[1] != Py_None) {
    policy->dead_letter = name_arg(values[1], "dead_letter");
    if (policy->dead_letter == NULL) return -1;
  }
  if (policy_duration_arg(values[2], "ack_timeout", &policy->ack_timeout_ns) < 0 ||
      policy_duration_arg(values[3], "ttl", &policy->ttl_ns) < 0) {
    return -1;
  }
  options->policy = policy;
  return 0;
}

static int queue_options_from(PyObject* const* values, shmq_queue_options_t* options) {
  shmq_queue_options_init(options);
  if (u64_arg(values[0], "capacity", &options->capacity) < 0) return -1;
  if (u32_arg(values[1], "max_message", &options->max_message) < 0) return -1;
  if (bool_arg(values[2], &options->durable) < 0) return -1;
  if (u32_arg(values[3], "mode", &options->mode) < 0) return -1;
  if (u32_arg(values[4], "max_producers", &options->max_producers) < 0) return -1;
  if (u32_arg(values[5], "max_groups", &options->max_groups) < 0) return -1;
  if (u32_arg(values[6], "max_consumers", &options->max_consumers) < 0) return -1;
  if (group_arg(values[7], &options->group) < 0) return -1;
  return 0;
}

static PyObject* Queue_create(PyObject* cls, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  (void)cls;
  static const char* const params[] = {"name", QUEUE_OPTION_KEYWORDS, "namespace", POLICY_KEYWORDS};
  PyObject* values[QUEUE_OPTION_COUNT + 2 + POLICY_COUNT];
  if (parse_args("create", args, nargs, kwnames, params, QUEUE_OPTION_COUNT + 2 + POLICY_COUNT, 1, 1, values) <
      0) {
    return NULL;
  }
  const char* name = name_arg(values[0], "name");
  const char* ns;
  shmq_queue_options_t options;
  shmq_delivery_policy_t policy;
  if (name == NULL || queue_options_from(values + 1, &options) < 0 ||
      namespace_arg(values[QUEUE_OPTION_COUNT + 1], &ns) < 0 ||
      policy_from(values + QUEUE_OPTION_COUNT + 2, &policy, &options) < 0) {
    return NULL;
  }
  shmq_queue_t* handle = NULL;
  shmq_status_t status;
  Py_BEGIN_ALLOW_THREADS
  status = shmq_queue_create(name, &options, ns, &handle);
  Py_END_ALLOW_THREADS
  if (status != SHMQ_OK) return raise_setup(status);
  return queue_wrap(handle);
}

typedef shmq_status_t (*OpenCall)(const char*, const char*, shmq_queue_t**);

static PyObject* queue_open_with(OpenCall open, const char* function, PyObject* const* args, Py_ssize_t nargs,
                                 PyObject* kwnames) {
  static const char* const params[] = {"name", "namespace"};
  PyObject* values[2];
  if (parse_args(function, args, nargs, kwnames, params, 2, 1, 1, values) < 0) return NULL;
  const char* name = name_arg(values[0], "name");
  const char* ns;
  if (name == NULL || namespace_arg(values[1], &ns) < 0) return NULL;
  shmq_queue_t* handle = NULL;
  shmq_status_t status;
  Py_BEGIN_ALLOW_THREADS
  status = open(name, ns, &handle);
  Py_END_ALLOW_THREADS
  if (status != SHMQ_OK) return raise_setup(status);
  return queue_wrap(handle);
}

static PyObject* Queue_open(PyObject* cls, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  (void)cls;
  return queue_open_with(shmq_queue_open, "open", args, nargs, kwnames);
}

static PyObject* Queue_open_read_only(PyObject* cls, PyObject* const* args, Py_ssize_t nargs,
                                      PyObject* kwnames) {
  (void)cls;
  return queue_open_with(shmq_queue_open_read_only, "open_read_only", args, nargs, kwnames);
}

static PyObject* Queue_open_or_create(PyObject* cls, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  (void)cls;
  static const char* const params[] = {"name", QUEUE_OPTION_KEYWORDS, "namespace", "wait_for_rebuild",
                                       POLICY_KEYWORDS};
  PyObject* values[QUEUE_OPTION_COUNT + 3 + POLICY_COUNT];
  if (parse_args("open_or_create", args, nargs, kwnames, params, QUEUE_OPTION_COUNT + 3 + POLICY_COUNT, 1, 1,
                 values) < 0) {
    return NULL;
  }
  const char* name = name_arg(values[0], "name");
  const char* ns;
  shmq_queue_options_t options;
  shmq_delivery_policy_t policy;
  if (name == NULL || queue_options_from(values + 1, &options) < 0 ||
      namespace_arg(values[QUEUE_OPTION_COUNT + 1], &ns) < 0 ||
      policy_from(values + QUEUE_OPTION_COUNT + 3, &policy, &options) < 0) {
    return NULL;
  }
  int64_t wait_ns = (int64_t)10 * 1000 * 1000 * 1000;
  PyObject* wait = values[QUEUE_OPTION_COUNT + 2];
  if (wait != NULL && timeout_arg(wait, "wait_for_rebuild", &wait_ns) < 0) return NULL;
  const int64_t deadline = deadline_after(wait_ns);
  /* The wait for shmqd's rebuild goes in slices too, so that Ctrl-C ends it. */
  for (;;) {
    int64_t slice = SLICE_NS;
    if (deadline >= 0) {
      const int64_t left = deadline - monotonic_ns();
      slice = left < 0 ? 0 : left < slice ? left : slice;
    }
    shmq_queue_t* handle = NULL;
    shmq_status_t status;
    Py_BEGIN_ALLOW_THREADS
    status = shmq_queue_open_or_create(name, &options, ns, slice / 1000000, &handle);
    Py_END_ALLOW_THREADS
    if (status == SHMQ_OK) return queue_wrap(handle);
    if (status != SHMQ_NEEDS_REBUILD || slice == 0 || (deadline >= 0 && monotonic_ns() >= deadline)) {
      return raise_setup(status);
    }
    if (PyErr_CheckSignals() < 0) return NULL;
  }
}

static PyObject* Queue_remove(PyObject* cls, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  (void)cls;
  static const char* const params[] = {"name", "namespace"};
  PyObject* values[2];
  if (parse_args("remove", args, nargs, kwnames, params, 2, 1, 1, values) < 0) return NULL;
  const char* name = name_arg(values[0], "name");
  const char* ns;
  if (name == NULL || namespace_arg(values[1], &ns) < 0) return NULL;
  bool existed = false;
  shmq_status_t status;
  Py_BEGIN_ALLOW_THREADS
  status = shmq_queue_remove(name, ns, &existed);
  Py_END_ALLOW_THREADS
  if (status != SHMQ_OK) return raise_setup(status);
  return PyBool_FromLong(existed);
}

static PyObject* Queue_list(PyObject* cls, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  (void)cls;
  static const char* const params[] = {"namespace"};
  PyObject* values[1];
  if (parse_args("list", args, nargs, kwnames, params, 1, 1, 0, values) < 0) return NULL;
  const char* ns;
  if (namespace_arg(values[0], &ns) < 0) return NULL;
  shmq_name_list_t* names = NULL;
  const shmq_status_t status = shmq_queue_list(ns, &names);
  if (status != SHMQ_OK) return raise_setup(status);
  PyObject* result = PyList_New((Py_ssize_t)names->count);
  for (size_t i = 0; result != NULL && i < names->count; i++) {
    PyObject* name = PyUnicode_DecodeUTF8(names->names[i], (Py_ssize_t)strlen(names->names[i]), "replace");
    if (name == NULL) Py_CLEAR(result);
    else PyList_SET_ITEM(result, (Py_ssize_t)i, name);
  }
  shmq_name_list_free(names);
  return result;
}

static PyObject* Queue_segment_bytes(PyObject* cls, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  (void)cls;
  static const char* const params[] = {QUEUE_OPTION_KEYWORDS};
  PyObject* values[QUEUE_OPTION_COUNT];
  if (parse_args("segment_bytes", args, nargs, kwnames, params, QUEUE_OPTION_COUNT, 0, 0, values) < 0) return NULL;
  shmq_queue_options_t options;
  if (queue_options_from(values, &options) < 0) return NULL;
  uint64_t bytes = 0;
  const shmq_status_t status = shmq_segment_bytes(&options, &bytes);
  if (status != SHMQ_OK) return raise_setup(status);
  return PyLong_FromUnsignedLongLong(bytes);
}

static PyObject* Queue_close(QueueObject* self, PyObject* unused) {
  (void)unused;
  shmq_queue_close(self->queue);
  self->queue = NULL;
  Py_RETURN_NONE;
}

static PyObject* Queue_enter(QueueObject* self, PyObject* unused) {
  (void)unused;
  if (queue_check_open(self) < 0) return NULL;
  return Py_NewRef(self);
}

static PyObject* Queue_exit(QueueObject* self, PyObject* const* args, Py_ssize_t nargs) {
  (void)args;
  (void)nargs;
  return Queue_close(self, NULL);
}

/* Sets d[key] = value and drops the reference to value; -1 when value is NULL. */
static int dict_put(PyObject* dict, const char* key, PyObject* value) {
  if (value == NULL) return -1;
  const int result = PyDict_SetItemString(dict, key, value);
  Py_DECREF(value);
  return result;
}

static PyObject* text_or_empty(const char* text) {
  return PyUnicode_DecodeUTF8(text != NULL ? text : "", text != NULL ? (Py_ssize_t)strlen(text) : 0, "replace");
}

/* A policy duration in seconds, None for none. */
static PyObject* seconds_or_none(int64_t ns) {
  if (ns <= 0) Py_RETURN_NONE;
  return PyFloat_FromDouble((double)ns / 1e9);
}

/* The policy's keys, as create() takes them (None: none), into d. */
static int policy_put(PyObject* d, const shmq_delivery_policy_t* p) {
  const bool has_dead_letter = p->dead_letter != NULL && p->dead_letter[0] != '\0';
  return dict_put(d, "max_deliveries",
                  p->max_deliveries == 0 ? Py_NewRef(Py_None) : PyLong_FromUnsignedLong(p->max_deliveries)) < 0 ||
                         dict_put(d, "dead_letter",
                                  has_dead_letter ? text_or_empty(p->dead_letter) : Py_NewRef(Py_None)) < 0 ||
                         dict_put(d, "ack_timeout", seconds_or_none(p->ack_timeout_ns)) < 0 ||
                         dict_put(d, "ttl", seconds_or_none(p->ttl_ns)) < 0
             ? -1
             : 0;
}

static PyObject* options_dict(const shmq_queue_options_t* o) {
  PyObject* d = PyDict_New();
  if (d == NULL) return NULL;
  if (dict_put(d, "capacity", PyLong_FromUnsignedLongLong(o->capacity)) < 0 ||
      dict_put(d, "max_message", PyLong_FromUnsignedLong(o->max_message)) < 0 ||
      dict_put(d, "durable", PyBool_FromLong(o->durable)) < 0 ||
      dict_put(d, "mode", PyLong_FromUnsignedLong(o->mode)) < 0 ||
      dict_put(d, "max_producers", PyLong_FromUnsignedLong(o->max_producers)) < 0 ||
      dict_put(d, "max_groups", PyLong_FromUnsignedLong(o->max_groups)) < 0 ||
      dict_put(d, "max_consumers", PyLong_FromUnsignedLong(o->max_consumers)) < 0 ||
      dict_put(d, "group", PyLong_FromLongLong(o->group)) < 0 ||
      (o->policy != NULL && policy_put(d, o->policy) < 0)) {
    Py_DECREF(d);
    return NULL;
  }
  return d;
}

static PyObject* Queue_options(QueueObject* self, PyObject* unused) {
  (void)unused;
  if (queue_check_open(self) < 0) return NULL;
  shmq_queue_options_t options;
  const shmq_status_t status = shmq_queue_get_options(self->queue, &options);
  if (status != SHMQ_OK) return raise_setup(status);
  return options_dict(&options);
}

static PyObject* Queue_deleted(QueueObject* self, PyObject* unused) {
  (void)unused;
  if (queue_check_open(self) < 0) return NULL;
  return PyBool_FromLong(shmq_queue_deleted(self->queue));
}

static PyObject* producer_info_dict(const shmq_producer_info_t* p) {
  PyObject* d = PyDict_New();
  if (d == NULL) return NULL;
  if (dict_put(d, "id", PyLong_FromUnsignedLong(p->id)) < 0 || dict_put(d, "name", text_or_empty(p->name)) < 0 ||
      dict_put(d, "pid", PyLong_FromLongLong(p->pid)) < 0 ||
      dict_put(d, "attached", PyBool_FromLong(p->attached)) < 0 ||
      dict_put(d, "alive", PyBool_FromLong(p->alive)) < 0 ||
      dict_put(d, "last_sequence", PyLong_FromUnsignedLongLong(p->last_sequence)) < 0 ||
      dict_put(d, "messages", PyLong_FromUnsignedLongLong(p->messages)) < 0 ||
      dict_put(d, "bytes", PyLong_FromUnsignedLongLong(p->bytes)) < 0) {
    Py_DECREF(d);
    return NULL;
  }
  return d;
}

static PyObject* consumer_info_dict(const shmq_consumer_info_t* c, bool active) {
  PyObject* d = PyDict_New();
  if (d == NULL) return NULL;
  if (dict_put(d, "index", PyLong_FromUnsignedLong(c->index)) < 0 ||
      dict_put(d, "pid", PyLong_FromLongLong(c->pid)) < 0 ||
      dict_put(d, "alive", PyBool_FromLong(c->alive)) < 0 ||
      dict_put(d, "active", PyBool_FromLong(active)) < 0 ||
      dict_put(d, "in_flight", PyLong_FromUnsignedLong(c->in_flight)) < 0 ||
      dict_put(d, "received", PyLong_FromUnsignedLongLong(c->received)) < 0 ||
      dict_put(d, "acked", PyLong_FromUnsignedLongLong(c->acked)) < 0) {
    Py_DECREF(d);
    return NULL;
  }
  return d;
}

static PyObject* group_info_dict(const shmq_group_info_t* g, const shmq_group_info_ext_t* ext,
                                 const shmq_group_delivery_info_t* delivery) {
  PyObject* d = PyDict_New();
  if (d == NULL) return NULL;
  PyObject* consumers = PyList_New((Py_ssize_t)g->consumer_count);
  for (size_t i = 0; consumers != NULL && i < g->consumer_count; i++) {
    PyObject* c = consumer_info_dict(&g->consumers[i], ext->consumer_active[i]);
    if (c == NULL) Py_CLEAR(consumers);
    else PyList_SET_ITEM(consumers, (Py_ssize_t)i, c);
  }
  if (dict_put(d, "name", text_or_empty(g->name)) < 0 ||
      dict_put(d, "exclusive", PyBool_FromLong(ext->exclusive)) < 0 ||
      dict_put(d, "read_position", PyLong_FromUnsignedLongLong(g->read_position)) < 0 ||
      dict_put(d, "reading_journal", PyBool_FromLong(g->reading_journal)) < 0 ||
      dict_put(d, "acked_position", PyLong_FromUnsignedLongLong(g->acked_position)) < 0 ||
      dict_put(d, "lag_bytes", PyLong_FromUnsignedLongLong(g->lag_bytes)) < 0 ||
      dict_put(d, "lag_messages", PyLong_FromUnsignedLongLong(g->lag_messages)) < 0 ||
      dict_put(d, "in_flight", PyLong_FromUnsignedLongLong(g->in_flight)) < 0 ||
      dict_put(d, "delivered", PyLong_FromUnsignedLongLong(g->delivered)) < 0 ||
      dict_put(d, "acked", PyLong_FromUnsignedLongLong(g->acked)) < 0 ||
      dict_put(d, "redelivered", PyLong_FromUnsignedLongLong(g->redelivered)) < 0 ||
      dict_put(d, "dead_lettered", PyLong_FromUnsignedLongLong(delivery->dead_lettered)) < 0 ||
      dict_put(d, "dropped", PyLong_FromUnsignedLongLong(delivery->dropped)) < 0 ||
      dict_put(d, "expired", PyLong_FromUnsignedLongLong(delivery->expired)) < 0 ||
      dict_put(d, "rejected", PyLong_FromUnsignedLongLong(delivery->rejected)) < 0 ||
      dict_put(d, "nacked", PyLong_FromUnsignedLongLong(delivery->nacked)) < 0 ||
      dict_put(d, "lease_expired", PyLong_FromUnsignedLongLong(delivery->lease_expired)) < 0 ||
      dict_put(d, "consumers", consumers) < 0) {
    Py_DECREF(d);
    return NULL;
  }
  return d;
}

static const char* journal_trouble_name(shmq_journal_trouble_t trouble) {
  switch (trouble) {
    case SHMQ_JOURNAL_OK: return "none";
    case SHMQ_JOURNAL_SETUP_FAILING: return "setup_failing";
    case SHMQ_JOURNAL_CONFLICT: return "conflict";
  }
  return "unknown";
}

static PyObject* info_dict(const shmq_queue_info_t* info) {
  PyObject* d = PyDict_New();
  if (d == NULL) return NULL;
  PyObject* producers = PyList_New((Py_ssize_t)info->producer_count);
  for (size_t i = 0; producers != NULL && i < info->producer_count; i++) {
    PyObject* p = producer_info_dict(&info->producers[i]);
    if (p == NULL) Py_CLEAR(producers);
    else PyList_SET_ITEM(producers, (Py_ssize_t)i, p);
  }
  PyObject* groups = producers == NULL ? NULL : PyList_New((Py_ssize_t)info->group_count);
  for (size_t i = 0; groups != NULL && i < info->group_count; i++) {
    PyObject* g = group_info_dict(&info->groups[i], &info->groups_ext[i], &info->groups_delivery[i]);
    if (g == NULL) Py_CLEAR(groups);
    else PyList_SET_ITEM(groups, (Py_ssize_t)i, g);
  }
  if (groups == NULL) Py_CLEAR(producers);
  PyObject* policy = PyDict_New();
  if (policy != NULL && policy_put(policy, &info->policy) < 0) Py_CLEAR(policy);
  if (dict_put(d, "name", text_or_empty(info->name)) < 0 || dict_put(d, "ns", text_or_empty(info->ns)) < 0 ||
      dict_put(d, "capacity", PyLong_FromUnsignedLongLong(info->capacity)) < 0 ||
      dict_put(d, "max_message", PyLong_FromUnsignedLong(info->max_message)) < 0 ||
      dict_put(d, "durable", PyBool_FromLong(info->durable)) < 0 ||
      dict_put(d, "mode", PyLong_FromUnsignedLong(info->mode)) < 0 ||
      dict_put(d, "uid", PyLong_FromUnsignedLong(info->uid)) < 0 ||
      dict_put(d, "gid", PyLong_FromUnsignedLong(info->gid)) < 0 ||
      dict_put(d, "daemon_pid_namespace", PyLong_FromUnsignedLongLong(info->daemon_pid_namespace)) < 0 ||
      dict_put(d, "creator_pid", PyLong_FromLongLong(info->creator_pid)) < 0 ||
      dict_put(d, "created_unix_ns", PyLong_FromUnsignedLongLong(info->created_unix_ns)) < 0 ||
      dict_put(d, "head_position", PyLong_FromUnsignedLongLong(info->head_position)) < 0 ||
      dict_put(d, "tail_position", PyLong_FromUnsignedLongLong(info->tail_position)) < 0 ||
      dict_put(d, "bytes_in_use", PyLong_FromUnsignedLongLong(info->bytes_in_use)) < 0 ||
      dict_put(d, "messages_in_use", PyLong_FromUnsignedLongLong(info->messages_in_use)) < 0 ||
      dict_put(d, "messages_total", PyLong_FromUnsignedLongLong(info->messages_total)) < 0 ||
      dict_put(d, "journal_written", PyLong_FromUnsignedLongLong(info->journal_written)) < 0 ||
      dict_put(d, "journal_synced", PyLong_FromUnsignedLongLong(info->journal_synced)) < 0 ||
      dict_put(d, "journal_error", PyLong_FromLong(info->journal_error)) < 0 ||
      dict_put(d, "journal_trouble", PyUnicode_FromString(journal_trouble_name(info->journal_trouble))) < 0 ||
      dict_put(d, "groups_to_journal", PyLong_FromUnsignedLongLong(info->groups_to_journal)) < 0 ||
      dict_put(d, "holes_skipped", PyLong_FromUnsignedLongLong(info->holes_skipped)) < 0 ||
      dict_put(d, "redelivered", PyLong_FromUnsignedLongLong(info->redelivered)) < 0 ||
      dict_put(d, "clients_reaped", PyLong_FromUnsignedLongLong(info->clients_reaped)) < 0 ||
      dict_put(d, "daemon_pid", PyLong_FromLongLong(info->daemon_pid)) < 0 ||
      dict_put(d, "daemon_alive", PyBool_FromLong(info->daemon_alive)) < 0 ||
      dict_put(d, "policy", Py_XNewRef(policy)) < 0 || dict_put(d, "producers", producers) < 0 ||
      dict_put(d, "groups", groups) < 0) {
    Py_XDECREF(policy);
    Py_DECREF(d);
    return NULL;
  }
  Py_DECREF(policy);
  return d;
}

static PyObject* Queue_info(QueueObject* self, PyObject* unused) {
  (void)unused;
  if (queue_check_open(self) < 0) return NULL;
  shmq_queue_info_t* info = NULL;
  const shmq_status_t status = shmq_queue_info(self->queue, &info);
  if (status != SHMQ_OK) return raise_setup(status);
  PyObject* result = info_dict(info);
  shmq_queue_info_free(info);
  return result;
}

static PyObject* Queue_delete_group(QueueObject* self, PyObject* const* args, Py_ssize_t nargs,
                                    PyObject* kwnames) {
  static const char* const params[] = {"group"};
  PyObject* values[1];
  if (parse_args("delete_group", args, nargs, kwnames, params, 1, 1, 1, values) < 0) return NULL;
  if (queue_check_open(self) < 0) return NULL;
  const char* group = name_arg(values[0], "group");
  if (group == NULL) return NULL;
  const shmq_status_t status = shmq_queue_delete_group(self->queue, group);
  if (status != SHMQ_OK) return raise_setup(status);
  Py_RETURN_NONE;
}

static PyObject* Queue_producer_name(QueueObject* self, PyObject* const* args, Py_ssize_t nargs,
                                     PyObject* kwnames) {
  static const char* const params[] = {"id"};
  PyObject* values[1];
  if (parse_args("producer_name", args, nargs, kwnames, params, 1, 1, 1, values) < 0) return NULL;
  if (queue_check_open(self) < 0) return NULL;
  uint32_t id = 0;
  if (u32_arg(values[0], "id", &id) < 0) return NULL;
  char buf[NAME_BUFFER];
  size_t length = 0;
  const shmq_status_t status = shmq_queue_producer_name(self->queue, id, buf, sizeof buf, &length);
  if (status != SHMQ_OK) return raise_setup(status);
  return PyUnicode_DecodeUTF8(buf, (Py_ssize_t)strlen(buf), "replace");
}

static PyObject* Queue_get_name(QueueObject* self, void* unused) {
  (void)unused;
  return Py_NewRef(self->name);
}

static PyObject* Queue_get_namespace(QueueObject* self, void* unused) {
  (void)unused;
  return Py_NewRef(self->ns);
}

static PyObject* Queue_get_closed(QueueObject* self, void* unused) {
  (void)unused;
  return PyBool_FromLong(self->queue == NULL);
}

static PyObject* Queue_repr(QueueObject* self) {
  return PyUnicode_FromFormat("<shmq.Queue %R namespace=%R%s>", self->name, self->ns,
                              self->queue == NULL ? " closed" : "");
}

/* ------------------------------------------------------------------------ */
/* Producer                                                                  */

/* A record of the open claim: the memoryview handed out and its exporter. */
typedef struct {
  PyObject* view;
  PayloadObject* payload;
} ClaimedRecord;

typedef struct {
  HandleBase base;
  shmq_producer_t* producer;
  QueueObject* queue;
  PyObject* name;
  uint32_t max_message;
  bool durable;
  /* The open claim's records, in order: one for claim(), one or more for
   * claim_many(); claim_count of claim_capacity in use (kept for the next). */
  ClaimedRecord* claim;
  Py_ssize_t claim_count;
  Py_ssize_t claim_capacity;
  /* claim() or claim_many() waits for room. A signal handler that runs
   * between its slices must not claim: the wait's next slice would abort that
   * claim in C while its views still pointed at the ring. */
  int claim_waiting;
} ProducerObject;

static PyObject* Queue_producer(QueueObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  static const char* const params[] = {"name", "spin", "precise_timestamps"};
  PyObject* values[3];
  if (parse_args("producer", args, nargs, kwnames, params, 3, 1, 1, values) < 0) return NULL;
  if (queue_check_open(self) < 0) return NULL;
  const char* name = name_arg(values[0], "name");
  if (name == NULL) return NULL;
  shmq_producer_options_t options;
  shmq_producer_options_init(&options);
  if (u32_arg(values[1], "spin", &options.wait_spin) < 0 || bool_arg(values[2], &options.precise_timestamps) < 0) {
    return NULL;
  }
  shmq_queue_options_t queue_options;
  shmq_status_t status = shmq_queue_get_options(self->queue, &queue_options);
  if (status != SHMQ_OK) return raise_setup(status);
  shmq_producer_t* handle = NULL;
  status = shmq_producer_attach(self->queue, name, &options, &handle);
  if (status != SHMQ_OK) return raise_setup(status);
  ProducerObject* producer = PyObject_New(ProducerObject, &ProducerType);
  if (producer == NULL) {
    shmq_producer_close(handle);
    return NULL;
  }
  producer->base.open = 1;
  producer->base.busy = 0;
  producer->base.close_pending = 0;
  producer->base.kind = "producer";
  producer->producer = handle;
  producer->queue = (QueueObject*)Py_NewRef(self);
  producer->name = Py_NewRef(values[0]);
  producer->max_message = queue_options.max_message;
  producer->durable = queue_options.durable;
  producer->claim = NULL;
  producer->claim_count = 0;
  producer->claim_capacity = 0;
  producer->claim_waiting = 0;
  return (PyObject*)producer;
}

/* Gives up the open claim's memoryviews and exporters (after commit or abort). */
static void producer_drop_claim(ProducerObject* self) {
  for (Py_ssize_t i = 0; i < self->claim_count; i++) {
    self->claim[i].payload->valid = 0;
    Py_CLEAR(self->claim[i].view);
    Py_CLEAR(self->claim[i].payload);
  }
  self->claim_count = 0;
}

/* Before the claim ends: its memoryviews released, no other buffer of it
 * alive. Every view is released even past a record that fails (the first
 * failure is raised), so a refused commit leaves none of them usable,
 * whichever record holds the slice. */
static int producer_release_claim(ProducerObject* self) {
  PyObject *type = NULL, *value = NULL, *traceback = NULL;
  int failed = 0;
  for (Py_ssize_t i = 0; i < self->claim_count; i++) {
    if (release_view(&self->claim[i].view, self->claim[i].payload, "claim") == 0) continue;
    if (failed) {
      PyErr_Clear();
    } else {
      failed = 1;
      PyErr_Fetch(&type, &value, &traceback);
    }
  }
  if (failed) PyErr_Restore(type, value, traceback);
  return failed ? -1 : 0;
}

/* Hands the open C claim's records out as memoryviews, kept in self->claim.
 * On failure (no memory) the claim is aborted. */
static int producer_expose_claim(ProducerObject* self) {
  const Py_ssize_t count = (Py_ssize_t)shmq_producer_claimed_count(self->producer);
  if (count > self->claim_capacity) {
    ClaimedRecord* grown = PyMem_Realloc(self->claim, (size_t)count * sizeof *grown);
    if (grown == NULL) {
      PyErr_NoMemory();
      goto fail;
    }
    self->claim = grown;
    self->claim_capacity = count;
  }
  for (Py_ssize_t i = 0; i < count; i++) {
    void* buf = NULL;
    size_t size = 0;
    (void)shmq_producer_claimed(self->producer, (size_t)i, &buf, &size); /* i < count: SHMQ_OK */
    PayloadObject* payload = payload_new(buf, size, 0);
    if (payload == NULL) goto fail;
    PyObject* view = PyMemoryView_FromObject((PyObject*)payload);
    if (view == NULL) {
      Py_DECREF(payload);
      goto fail;
    }
    self->claim[i] = (ClaimedRecord){view, payload};
    self->claim_count = i + 1;
  }
  return 0;
fail:
  producer_drop_claim(self); /* no view was handed out yet: nothing else holds one */
  shmq_producer_abort(self->producer);
  return -1;
}

/* The producer object goes while buffers of its open claim are still alive
 * (slices of a claimed view): the handle, and with it the mapping, must stay
 * until the last of them goes. The first such exporter takes the handle, the
 * others keep that one alive. */
static void producer_orphan_claim(ProducerObject* self) {
  PayloadObject* owner = NULL;
  for (Py_ssize_t i = 0; i < self->claim_count; i++) {
    PayloadObject* payload = self->claim[i].payload;
    if (payload->exports == 0) continue;
    if (owner == NULL) {
      owner = payload;
      owner->orphan_producer = self->producer;
      self->producer = NULL;
    } else {
      payload->orphan_keeper = Py_NewRef((PyObject*)owner);
    }
  }
}

static void Producer_dealloc(ProducerObject* self) {
  /* A dealloc must not leave an exception behind, nor lose a pending one. */
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  for (Py_ssize_t i = 0; i < self->claim_count; i++) {
    if (self->claim[i].view == NULL) continue;
    PyObject* result = call_release(self->claim[i].view);
    Py_XDECREF(result);
    PyErr_Clear();
  }
  PyErr_Restore(type, value, traceback);
  producer_orphan_claim(self);
  for (Py_ssize_t i = 0; i < self->claim_count; i++) {
    Py_CLEAR(self->claim[i].view);
    Py_CLEAR(self->claim[i].payload);
  }
  PyMem_Free(self->claim);
  shmq_producer_close(self->producer);
  Py_XDECREF(self->queue);
  Py_XDECREF(self->name);
  PyObject_Free(self);
}

/* Entry check of every producer method: open, and not in use by another thread. */
static inline int producer_ready(ProducerObject* self) {
  if (self->producer == NULL || self->base.close_pending) {
    raise_closed(&self->base);
    return -1;
  }
  if (self->base.busy) {
    raise_busy(&self->base);
    return -1;
  }
  return 0;
}

static PyObject* raise_send_status(ProducerObject* self, shmq_status_t status, size_t size) {
  if (status == SHMQ_TOO_LARGE) {
    char text[160];
    PyOS_snprintf(text, sizeof text, "too large: %zu bytes, above the queue's max_message (%u bytes)", size,
                  (unsigned)self->max_message);
    return raise_status_msg(status, text);
  }
  if (status == SHMQ_DUPLICATE && self->producer != NULL) {
    char text[160];
    PyOS_snprintf(text, sizeof text, "duplicate: the sequence is not above the producer's last one (%llu)",
                  (unsigned long long)shmq_producer_last_sequence(self->producer));
    return raise_status_msg(status, text);
  }
  return raise_status(status);
}

typedef struct {
  shmq_producer_t* producer;
  const Data* data;
  uint64_t sequence; /* in: explicit (has_sequence), out: the one sent */
  int has_sequence;
} SendSlice;

static shmq_status_t send_slice(void* context, int64_t slice_ns) {
  SendSlice* s = context;
  if (s->has_sequence) {
    return shmq_producer_send_seq(s->producer, s->sequence, s->data->data, s->data->size, slice_ns);
  }
  return shmq_producer_send(s->producer, s->data->data, s->data->size, slice_ns, &s->sequence);
}

static shmq_status_t wait_durable_slice(void* context, int64_t slice_ns) {
  return shmq_producer_wait_durable(((SendSlice*)context)->producer, slice_ns);
}

/* One message: try at once; when the ring is full and `deadline` allows,
 * wait in slices. Returns the status (SHMQ_TIMEOUT when the deadline passed,
 * also for a deadline of "now"), or -1 with an exception set. */
static int send_one(ProducerObject* self, SendSlice* s, int64_t deadline, int may_wait, shmq_status_t* status) {
  if (s->has_sequence) {
    *status = shmq_producer_try_send_seq(self->producer, s->sequence, s->data->data, s->data->size);
  } else {
    *status = shmq_producer_try_send(self->producer, s->data->data, s->data->size, &s->sequence);
  }
  if (*status != SHMQ_FULL || !may_wait) return 0;
  if (deadline >= 0 && monotonic_ns() >= deadline) {
    *status = SHMQ_TIMEOUT;
    return 0;
  }
  return wait_in_slices(&self->base, send_slice, s, deadline, status);
}

/* Durable confirm of what was sent: wait_durable in slices. A Timeout names
 * `sequence` (when >= 0): sent, but not yet known to be on disk. */
static PyObject* confirm_durable(ProducerObject* self, int64_t sequence, int64_t deadline) {
  SendSlice s = {.producer = self->producer};
  shmq_status_t status = shmq_producer_wait_durable(self->producer, 0);
  if (status == SHMQ_TIMEOUT && (deadline < 0 || monotonic_ns() < deadline)) {
    if (wait_in_slices(&self->base, wait_durable_slice, &s, deadline, &status) < 0) {
      return NULL;
    }
  }
  if (status == SHMQ_TIMEOUT) {
    return raise_status_seq(status,
                            sequence >= 0 ? "timeout: the message is in the queue, but not yet synced to disk"
                                          : "timeout: not everything sent is synced to disk yet",
                            sequence);
  }
  if (status != SHMQ_OK) return raise_status(status);
  Py_RETURN_NONE;
}

/* The optional `seq` argument: 0 when absent (the next sequence). */
static int sequence_arg(PyObject* object, SendSlice* s) {
  s->has_sequence = object != NULL && object != Py_None;
  s->sequence = 0;
  return s->has_sequence ? u64_arg(object, "seq", &s->sequence) : 0;
}

static PyObject* Producer_send(ProducerObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  if (producer_ready(self) < 0) return NULL;
  PyObject* values[4] = {NULL, NULL, NULL, NULL};
  if (nargs == 1 && kwnames == NULL) {
    values[0] = args[0]; /* the fast path: send(data) */
  } else {
    static const char* const params[] = {"data", "seq", "durable", "timeout"};
    if (parse_args("send", args, nargs, kwnames, params, 4, 1, 1, values) < 0) return NULL;
  }
  SendSlice s = {.producer = self->producer};
  bool durable = false;
  int64_t timeout = SHMQ_FOREVER;
  if (sequence_arg(values[1], &s) < 0 || bool_arg(values[2], &durable) < 0 ||
      timeout_arg(values[3], "timeout", &timeout) < 0) {
    return NULL;
  }
  if (durable && !self->durable) {
    return raise_status_msg(SHMQ_NOT_DURABLE, "not durable: a durable send to a queue that is not durable");
  }
  Data data;
  if (data_get(values[0], &data) < 0) return NULL;
  s.data = &data;
  const int64_t deadline = deadline_after(timeout);
  shmq_status_t status;
  const int failed = send_one(self, &s, deadline, 1, &status);
  data_release(&data);
  if (failed) return NULL;
  if (status != SHMQ_OK) return raise_send_status(self, status, data.size);
  if (durable) {
    PyObject* confirmed = confirm_durable(self, (int64_t)s.sequence, deadline);
    if (confirmed == NULL) return NULL;
    Py_DECREF(confirmed);
  }
  return PyLong_FromUnsignedLongLong(s.sequence);
}

static PyObject* Producer_try_send(ProducerObject* self, PyObject* const* args, Py_ssize_t nargs,
                                   PyObject* kwnames) {
  if (producer_ready(self) < 0) return NULL;
  PyObject* values[2] = {NULL, NULL};
  if (nargs == 1 && kwnames == NULL) {
    values[0] = args[0];
  } else {
    static const char* const params[] = {"data", "seq"};
    if (parse_args("try_send", args, nargs, kwnames, params, 2, 1, 1, values) < 0) return NULL;
  }
  SendSlice s = {.producer = self->producer};
  if (sequence_arg(values[1], &s) < 0) return NULL;
  Data data;
  if (data_get(values[0], &data) < 0) return NULL;
  s.data = &data;
  shmq_status_t status;
  send_one(self, &s, 0, 0, &status);
  data_release(&data);
  if (status != SHMQ_OK) return raise_send_status(self, status, data.size);
  return PyLong_FromUnsignedLongLong(s.sequence);
}

/* send_many's failure: Timeout carries the last sequence sent (if any). */
static PyObject* raise_send_many(ProducerObject* self, shmq_status_t status, size_t size, int sent,
                                 uint64_t last) {
  if (status == SHMQ_TIMEOUT) {
    return raise_status_seq(status, "timeout: the ring stayed full; .sequence is the last one sent",
                            sent ? (int64_t)last : -1);
  }
  return raise_send_status(self, status, size);
}

/* send_many's fast path for a list or tuple: the next messages (up to 64)
 * with one batch claim, without waiting. Returns how many went (0: none
 * did, the one-at-a-time path that can wait and explain takes over), or -1
 * with an exception (an item that is not bytes-like). */
enum { kSendManyBatch = 64 };
static Py_ssize_t send_many_batch(ProducerObject* self, PyObject* messages, Py_ssize_t from) {
  Data data[kSendManyBatch];
  shmq_payload_t payloads[kSendManyBatch];
  Py_ssize_t n = 0;
  const Py_ssize_t total = PySequence_Fast_GET_SIZE(messages);
  for (; n < kSendManyBatch && from + n < total; n++) {
    if (data_get(PySequence_Fast_GET_ITEM(messages, from + n), &data[n]) < 0) break;
    payloads[n] = (shmq_payload_t){data[n].data, data[n].size};
  }
  if (PyErr_Occurred()) PyErr_Clear(); /* the one-at-a-time path raises it again, in order */
  size_t sent = 0;
  if (n > 1) (void)shmq_producer_try_send_batch(self->producer, payloads, (size_t)n, &sent);
  for (Py_ssize_t i = 0; i < n; i++) data_release(&data[i]);
  return (Py_ssize_t)sent;
}

static PyObject* Producer_send_many(ProducerObject* self, PyObject* const* args, Py_ssize_t nargs,
                                    PyObject* kwnames) {
  if (producer_ready(self) < 0) return NULL;
  static const char* const params[] = {"messages", "timeout"};
  PyObject* values[2];
  if (parse_args("send_many", args, nargs, kwnames, params, 2, 1, 1, values) < 0) return NULL;
  int64_t timeout = SHMQ_FOREVER;
  if (timeout_arg(values[1], "timeout", &timeout) < 0) return NULL;
  const int64_t deadline = deadline_after(timeout);
  PyObject* messages = values[0];
  const int indexed = PyList_CheckExact(messages) || PyTuple_CheckExact(messages);
  PyObject* iterator = NULL;
  if (!indexed && (iterator = PyObject_GetIter(messages)) == NULL) return NULL;
  uint64_t last = shmq_producer_last_sequence(self->producer);
  int sent = 0;
  for (Py_ssize_t i = 0;; i++) {
    PyObject* item;
    if (indexed) {
      /* Re-read the size each time: a wait releases the GIL, and the list may change. */
      if (i >= PySequence_Fast_GET_SIZE(messages)) break;
      const Py_ssize_t batched = send_many_batch(self, messages, i);
      if (batched > 0) {
        i += batched - 1; /* the loop's i++ steps past the last one sent */
        last = shmq_producer_last_sequence(self->producer);
        sent = 1;
        continue;
      }
      item = Py_NewRef(PySequence_Fast_GET_ITEM(messages, i));
    } else {
      item = PyIter_Next(iterator);
      if (item == NULL) {
        if (PyErr_Occurred()) goto error;
        break;
      }
    }
    Data data;
    if (data_get(item, &data) < 0) {
      Py_DECREF(item);
      goto error;
    }
    SendSlice s = {.producer = self->producer, .data = &data};
    shmq_status_t status;
    const int failed = send_one(self, &s, deadline, 1, &status);
    data_release(&data);
    Py_DECREF(item);
    if (failed) goto error;
    if (status != SHMQ_OK) {
      raise_send_many(self, status, data.size, sent, last);
      goto error;
    }
    last = s.sequence;
    sent = 1;
    if (self->producer == NULL) break; /* closed by a signal handler between slices */
  }
  Py_XDECREF(iterator);
  return PyLong_FromUnsignedLongLong(last);
error:
  Py_XDECREF(iterator);
  return NULL;
}

static PyObject* Producer_wait_durable(ProducerObject* self, PyObject* const* args, Py_ssize_t nargs,
                                       PyObject* kwnames) {
  if (producer_ready(self) < 0) return NULL;
  static const char* const params[] = {"timeout"};
  PyObject* values[1];
  if (parse_args("wait_durable", args, nargs, kwnames, params, 1, 1, 0, values) < 0) return NULL;
  int64_t timeout;
  if (timeout_arg(values[0], "timeout", &timeout) < 0) return NULL;
  if (!self->durable) return raise_status_msg(SHMQ_NOT_DURABLE, "not durable: the queue is not durable");
  return confirm_durable(self, -1, deadline_after(timeout));
}

typedef struct {
  shmq_producer_t* producer;
  uint64_t sequence;
  size_t size;
  void* buffer;
} ClaimSlice;

static shmq_status_t claim_slice(void* context, int64_t slice_ns) {
  ClaimSlice* c = context;
  return shmq_producer_claim(c->producer, c->size, slice_ns, &c->buffer);
}

/* A claim with an explicit sequence has no blocking form in shmq.h: poll. */
static shmq_status_t claim_seq_slice(void* context, int64_t slice_ns) {
  ClaimSlice* c = context;
  const int64_t end = monotonic_ns() + slice_ns;
  long pause_ns = 20 * 1000;
  for (;;) {
    const shmq_status_t status = shmq_producer_try_claim(c->producer, c->sequence, c->size, &c->buffer);
    if (status != SHMQ_FULL) return status;
    if (monotonic_ns() >= end) return SHMQ_TIMEOUT;
    struct timespec pause = {0, pause_ns};
    nanosleep(&pause, NULL);
    if (pause_ns < 1000 * 1000) pause_ns *= 2;
  }
}

/* Refuses a claim while another claim of this producer waits (see claim_waiting). */
static int claim_not_waiting(ProducerObject* self) {
  if (!self->claim_waiting) return 0;
  PyErr_SetString(PyExc_RuntimeError,
                  "a claim of this producer is already waiting for room (a signal handler may not claim on it)");
  return -1;
}

/* wait_in_slices for a claim, marked as claim_waiting throughout. */
static int wait_for_claim(ProducerObject* self, SliceCall call, void* context, int64_t deadline,
                          shmq_status_t* status) {
  self->claim_waiting = 1;
  const int rc = wait_in_slices(&self->base, call, context, deadline, status);
  self->claim_waiting = 0;
  return rc;
}

static PyObject* Producer_claim(ProducerObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  if (producer_ready(self) < 0 || claim_not_waiting(self) < 0) return NULL;
  static const char* const params[] = {"size", "seq", "timeout"};
  PyObject* values[3];
  if (parse_args("claim", args, nargs, kwnames, params, 3, 1, 1, values) < 0) return NULL;
  uint64_t size = 0;
  SendSlice seq;
  int64_t timeout;
  if (u64_arg(values[0], "size", &size) < 0 || sequence_arg(values[1], &seq) < 0 ||
      timeout_arg(values[2], "timeout", &timeout) < 0) {
    return NULL;
  }
  /* A new claim aborts the open one: its memory must be let go first. */
  if (producer_release_claim(self) < 0) return NULL;
  producer_drop_claim(self);
  ClaimSlice c = {.producer = self->producer, .sequence = seq.sequence, .size = (size_t)size, .buffer = NULL};
  const int64_t deadline = deadline_after(timeout);
  shmq_status_t status = shmq_producer_try_claim(self->producer, c.sequence, c.size, &c.buffer);
  if (status == SHMQ_FULL) {
    if (timeout == 0) {
      status = SHMQ_TIMEOUT;
    } else if (wait_for_claim(self, seq.has_sequence ? claim_seq_slice : claim_slice, &c, deadline, &status) < 0) {
      return NULL;
    }
  }
  if (status != SHMQ_OK) return raise_send_status(self, status, c.size);
  if (producer_expose_claim(self) < 0) return NULL;
  return Py_NewRef(self->claim[0].view);
}

typedef struct {
  shmq_producer_t* producer;
  const size_t* sizes;
  size_t count;
  size_t claimed; /* out */
} ClaimManySlice;

static shmq_status_t claim_many_slice(void* context, int64_t slice_ns) {
  ClaimManySlice* c = context;
  return shmq_producer_claim_batch(c->producer, c->sizes, c->count, slice_ns, &c->claimed);
}

/* claim_many's sizes: a list or tuple of ints, into a PyMem array (NULL when empty). */
static int sizes_arg(PyObject* object, size_t** sizes, size_t* count) {
  *sizes = NULL;
  *count = 0;
  if (!PyList_Check(object) && !PyTuple_Check(object)) {
    PyErr_Format(PyExc_TypeError, "sizes must be a list or tuple of ints, not %.100s", Py_TYPE(object)->tp_name);
    return -1;
  }
  const Py_ssize_t n = PySequence_Fast_GET_SIZE(object);
  if (n == 0) return 0;
  size_t* out = PyMem_Malloc((size_t)n * sizeof *out);
  if (out == NULL) {
    PyErr_NoMemory();
    return -1;
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject* item = PySequence_Fast_GET_ITEM(object, i);
    char what[48];
    PyOS_snprintf(what, sizeof what, "sizes[%zd]", i);
    uint64_t size = 0;
    if (!PyLong_Check(item)) { /* u64_arg would take None for its default */
      PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", what, Py_TYPE(item)->tp_name);
      PyMem_Free(out);
      return -1;
    }
    if (u64_arg(item, what, &size) < 0) {
      PyMem_Free(out);
      return -1;
    }
    out[i] = (size_t)size;
  }
  *sizes = out;
  *count = (size_t)n;
  return 0;
}

/* The records claimed as a list of their memoryviews. */
static PyObject* claimed_views(ProducerObject* self) {
  PyObject* list = PyList_New(self->claim_count);
  if (list == NULL) return NULL;
  for (Py_ssize_t i = 0; i < self->claim_count; i++) PyList_SET_ITEM(list, i, Py_NewRef(self->claim[i].view));
  return list;
}

static PyObject* Producer_claim_many(ProducerObject* self, PyObject* const* args, Py_ssize_t nargs,
                                     PyObject* kwnames) {
  if (producer_ready(self) < 0 || claim_not_waiting(self) < 0) return NULL;
  static const char* const params[] = {"sizes", "timeout"};
  PyObject* values[2];
  if (parse_args("claim_many", args, nargs, kwnames, params, 2, 1, 1, values) < 0) return NULL;
  int64_t timeout;
  if (timeout_arg(values[1], "timeout", &timeout) < 0) return NULL;
  size_t* sizes = NULL;
  size_t count = 0;
  if (sizes_arg(values[0], &sizes, &count) < 0) return NULL;
  ClaimManySlice c = {.producer = self->producer, .sizes = sizes, .count = count};
  PyObject* result = NULL;
  /* A new claim aborts the open one: its memory must be let go first. */
  if (producer_release_claim(self) < 0) goto done;
  producer_drop_claim(self);
  const int64_t deadline = deadline_after(timeout);
  shmq_status_t status = shmq_producer_try_claim_batch(self->producer, c.sizes, c.count, &c.claimed);
  if (status == SHMQ_FULL) {
    if (timeout == 0) {
      status = SHMQ_TIMEOUT;
    } else if (wait_for_claim(self, claim_many_slice, &c, deadline, &status) < 0) {
      goto done;
    }
  }
  if (status != SHMQ_OK) {
    raise_send_status(self, status, count > 0 ? sizes[0] : 0);
    goto done;
  }
  if (producer_expose_claim(self) < 0) goto done;
  result = claimed_views(self);
  if (result == NULL) {
    producer_drop_claim(self);
    shmq_producer_abort(self->producer);
  }
done:
  PyMem_Free(sizes);
  return result;
}

static PyObject* Producer_commit(ProducerObject* self, PyObject* unused) {
  (void)unused;
  if (producer_ready(self) < 0) return NULL;
  if (self->claim_count == 0) return raise_invalid("nothing is claimed: call claim() or claim_many() first");
  if (producer_release_claim(self) < 0) return NULL;
  uint64_t position = 0;
  const shmq_status_t status = shmq_producer_commit(self->producer, &position);
  producer_drop_claim(self);
  if (status != SHMQ_OK) return raise_status(status);
  return PyLong_FromUnsignedLongLong(position);
}

static PyObject* Producer_abort(ProducerObject* self, PyObject* unused) {
  (void)unused;
  if (producer_ready(self) < 0) return NULL;
  if (producer_release_claim(self) < 0) return NULL;
  shmq_producer_abort(self->producer);
  producer_drop_claim(self);
  Py_RETURN_NONE;
}

static PyObject* Producer_close(ProducerObject* self, PyObject* unused) {
  (void)unused;
  wait_until_idle(&self->base);
  if (self->producer == NULL) Py_RETURN_NONE;
  if (producer_release_claim(self) < 0) return NULL;
  producer_drop_claim(self);
  shmq_producer_close(self->producer);
  self->producer = NULL;
  self->base.open = 0;
  Py_RETURN_NONE;
}

static PyObject* Producer_enter(ProducerObject* self, PyObject* unused) {
  (void)unused;
  if (producer_ready(self) < 0) return NULL;
  return Py_NewRef(self);
}

static PyObject* Producer_exit(ProducerObject* self, PyObject* const* args, Py_ssize_t nargs) {
  (void)args;
  (void)nargs;
  return Producer_close(self, NULL);
}

static PyObject* Producer_get_id(ProducerObject* self, void* unused) {
  (void)unused;
  if (producer_ready(self) < 0) return NULL;
  return PyLong_FromUnsignedLong(shmq_producer_id(self->producer));
}

static PyObject* Producer_get_last_sequence(ProducerObject* self, void* unused) {
  (void)unused;
  if (producer_ready(self) < 0) return NULL;
  return PyLong_FromUnsignedLongLong(shmq_producer_last_sequence(self->producer));
}

static PyObject* Producer_get_last_position(ProducerObject* self, void* unused) {
  (void)unused;
  if (producer_ready(self) < 0) return NULL;
  return PyLong_FromUnsignedLongLong(shmq_producer_last_position(self->producer));
}

static PyObject* Producer_get_closed(ProducerObject* self, void* unused) {
  (void)unused;
  return PyBool_FromLong(self->producer == NULL);
}

static PyObject* Producer_repr(ProducerObject* self) {
  return PyUnicode_FromFormat("<shmq.Producer %R of queue %R%s>", self->name, self->queue->name,
                              self->producer == NULL ? " closed" : "");
}

/* ------------------------------------------------------------------------ */
/* Consumer and Message                                                      */

typedef struct MessageObject MessageObject;

/* A producer name read once, kept while the table entry still says the same. */
typedef struct {
  PyObject* name;
  size_t length;
  char text[NAME_BUFFER];
} NameCacheEntry;

#define NAME_CACHE_SIZE 256 /* producer ids are < 256 (max_producers <= 255) */

typedef struct {
  HandleBase base;
  shmq_consumer_t* consumer;
  QueueObject* queue;
  PyObject* group;
  MessageObject* held;        /* Message objects not yet acked (doubly linked) */
  MessageObject* unresolved;  /* acked Message objects whose producer name was never read */
  PayloadObject* exporters;   /* every payload exporter made from this consumer, alive */
  NameCacheEntry* names;      /* by producer id; allocated on first use */
} ConsumerObject;

struct MessageObject {
  PyObject_HEAD
  ConsumerObject* consumer; /* strong */
  shmq_message_t message;
  PyObject* producer;       /* the sender's name, read while held */
  PyObject* dead_letter;    /* the DeadLetter (or None) it carries, read while held */
  PyObject* view;           /* the memoryview handed out as .payload */
  PayloadObject* payload;   /* its exporter */
  MessageObject* prev;
  MessageObject* next;
  MessageObject** list;     /* the consumer's list it is in (held or unresolved), or NULL */
  int held;                 /* not yet acked, and the consumer not closed */
};

static void message_link(MessageObject* m, MessageObject** list) {
  m->list = list;
  m->prev = NULL;
  m->next = *list;
  if (*list != NULL) (*list)->prev = m;
  *list = m;
}

static void message_unlink(MessageObject* m) {
  if (m->list == NULL) return;
  if (m->prev != NULL) m->prev->next = m->next;
  else *m->list = m->next;
  if (m->next != NULL) m->next->prev = m->prev;
  m->prev = m->next = NULL;
  m->list = NULL;
}

/* Reads m's producer name from the table, reusing the str of the last read
 * of that entry when unchanged. Read lazily, never at receive nor ack: the
 * entry's cache line is one the producer writes at every send, and reading it
 * per message costs a cross-core miss on both sides (measured: a third of a
 * Python consumer's time, and the producer slowed as much). The name is the
 * sender's while m is held; after the ack it still is unless the entry went
 * to another name meanwhile, which needs every message of its producer
 * released and a new name attaching. */
static int message_resolve_producer(MessageObject* m) {
  if (m->producer != NULL) return 0;
  char text[NAME_BUFFER];
  size_t length = 0;
  const shmq_status_t status = shmq_message_producer(&m->message, text, sizeof text, &length);
  if (status != SHMQ_OK) {
    raise_setup(status);
    return -1;
  }
  if (length >= sizeof text) length = sizeof text - 1;
  ConsumerObject* c = m->consumer;
  const uint32_t id = m->message.producer_id;
  if (c->names == NULL && id < NAME_CACHE_SIZE) {
    c->names = PyMem_Calloc(NAME_CACHE_SIZE, sizeof(NameCacheEntry));
  }
  NameCacheEntry* entry = c->names != NULL && id < NAME_CACHE_SIZE ? &c->names[id] : NULL;
  PyObject* name;
  if (entry != NULL && entry->name != NULL && entry->length == length && memcmp(entry->text, text, length) == 0) {
    name = Py_NewRef(entry->name);
  } else {
    name = PyUnicode_DecodeUTF8(text, (Py_ssize_t)length, "replace");
    if (name == NULL) return -1;
    if (entry != NULL) {
      Py_XSETREF(entry->name, Py_NewRef(name));
      entry->length = length;
      memcpy(entry->text, text, length);
    }
  }
  m->producer = name;
  if (m->list == &c->unresolved) message_unlink(m);
  return 0;
}

/* The message is no longer held: its payload released; it stays listed
 * while its producer name is unread, for close() to read it in time. */
static void message_mark_released(MessageObject* m) {
  if (!m->held) return;
  m->held = 0;
  if (m->payload != NULL) m->payload->valid = 0;
  message_unlink(m);
  if (m->producer == NULL) message_link(m, &m->consumer->unresolved);
}

static void Message_dealloc(MessageObject* self) {
  message_unlink(self);
  Py_XDECREF(self->view);
  Py_XDECREF(self->payload);
  Py_XDECREF(self->producer);
  Py_XDECREF(self->dead_letter);
  Py_DECREF(self->consumer);
  PyObject_Free(self);
}

static MessageObject* message_new(ConsumerObject* consumer, const shmq_message_t* message) {
  MessageObject* m = PyObject_New(MessageObject, &MessageType);
  if (m == NULL) return NULL;
  m->consumer = (ConsumerObject*)Py_NewRef(consumer);
  m->message = *message;
  m->producer = NULL;
  m->dead_letter = NULL;
  m->view = NULL;
  m->payload = NULL;
  m->held = 1;
  message_link(m, &consumer->held);
  return m;
}

static PyObject* Message_get_payload(MessageObject* self, void* unused) {
  (void)unused;
  if (self->view != NULL) return Py_NewRef(self->view);
  if (!self->held) {
    self->view = released_view();
    return Py_XNewRef(self->view);
  }
  if (self->payload == NULL) {
    PayloadObject* payload = payload_new((void*)self->message.payload, self->message.size, 1);
    if (payload == NULL) return NULL;
    ConsumerObject* c = self->consumer;
    payload->consumer = Py_NewRef((PyObject*)c);
    payload->position = self->message.position;
    payload->list_head = &c->exporters;
    payload->next = c->exporters;
    if (c->exporters != NULL) c->exporters->prev = payload;
    c->exporters = payload;
    self->payload = payload;
  }
  self->view = PyMemoryView_FromObject((PyObject*)self->payload);
  return Py_XNewRef(self->view);
}

static PyObject* Message_get_producer(MessageObject* self, void* unused) {
  (void)unused;
  if (self->producer == NULL) {
    if (self->consumer->consumer == NULL) return PyUnicode_FromString(""); /* cannot happen: close reads them */
    if (message_resolve_producer(self) < 0) return NULL;
  }
  return Py_NewRef(self->producer);
}

/* shmq.DeadLetter: where a message of a dead-letter queue came from. */
static PyTypeObject* DeadLetterType = NULL;

static PyStructSequence_Field DeadLetter_fields[] = {
    {"payload", "The original payload (bytes: a copy, without the origin the message carries after it)."},
    {"origin_queue", "The queue it was dead-lettered from."},
    {"origin_group", "The consumer group that dead-lettered it."},
    {"origin_producer", "Its producer's name in the origin queue (\"\" when unknown)."},
    {"origin_seq", "Its sequence in the origin queue."},
    {"origin_position", "Its log position in the origin queue."},
    {"origin_timestamp_ns", "When it was sent (CLOCK_REALTIME, nanoseconds)."},
    {"reason", "Why: \"max-deliveries\", \"expired\" or \"rejected\"."},
    {"deliveries", "Its deliveries to the origin group before it was dead-lettered."},
    {NULL, NULL},
};

static PyStructSequence_Desc DeadLetter_desc = {
    "shmq.DeadLetter",
    "Where a message of a dead-letter queue came from (Message.dead_letter).",
    DeadLetter_fields,
    9,
};

static PyObject* dead_letter_new(const shmq_dead_letter_t* d) {
  PyObject* result = PyStructSequence_New(DeadLetterType);
  if (result == NULL) return NULL;
  PyObject* items[] = {
      PyBytes_FromStringAndSize(d->payload, (Py_ssize_t)d->size),
      text_or_empty(d->origin_queue),
      text_or_empty(d->origin_group),
      text_or_empty(d->origin_producer),
      PyLong_FromUnsignedLongLong(d->origin_sequence),
      PyLong_FromUnsignedLongLong(d->origin_position),
      PyLong_FromUnsignedLongLong(d->origin_timestamp_ns),
      PyUnicode_FromString(shmq_dead_letter_reason_str(d->reason)),
      PyLong_FromUnsignedLong(d->deliveries),
  };
  int failed = 0;
  for (Py_ssize_t i = 0; i < (Py_ssize_t)(sizeof items / sizeof items[0]); i++) {
    if (items[i] == NULL) failed = 1;
    PyStructSequence_SetItem(result, i, items[i]); /* steals; NULL is cleared by the dealloc */
  }
  if (failed) Py_CLEAR(result);
  return result;
}

static PyObject* Message_get_dead_letter(MessageObject* self, void* unused) {
  (void)unused;
  if (self->dead_letter != NULL) return Py_NewRef(self->dead_letter);
  if (!self->held) {
    PyErr_SetString(PyExc_ValueError,
                    "the message was released (acked, nacked or rejected) before its dead_letter was read");
    return NULL;
  }
  shmq_dead_letter_t origin;
  const shmq_status_t status = shmq_message_dead_letter(&self->message, &origin);
  if (status == SHMQ_NOT_FOUND) {
    self->dead_letter = Py_NewRef(Py_None);
  } else if (status != SHMQ_OK) {
    return raise_setup(status);
  } else {
    self->dead_letter = dead_letter_new(&origin);
    if (self->dead_letter == NULL) return NULL;
  }
  return Py_NewRef(self->dead_letter);
}

static PyObject* Message_bytes(MessageObject* self, PyObject* unused) {
  (void)unused;
  if (!self->held) {
    PyErr_SetString(PyExc_ValueError, "the message was acknowledged: its payload is released");
    return NULL;
  }
  return PyBytes_FromStringAndSize(self->message.payload, (Py_ssize_t)self->message.size);
}

static PyObject* Message_get_held(MessageObject* self, void* unused) {
  (void)unused;
  return PyBool_FromLong(self->held);
}

static PyObject* Message_get_consumer(MessageObject* self, void* unused) {
  (void)unused;
  return Py_NewRef(self->consumer);
}

static PyObject* Message_repr(MessageObject* self) {
  return PyUnicode_FromFormat("<shmq.Message position=%llu producer_id=%u seq=%llu size=%zu%s%s>",
                              (unsigned long long)self->message.position, (unsigned)self->message.producer_id,
                              (unsigned long long)self->message.sequence, self->message.size,
                              self->message.redelivered ? " redelivered" : "", self->held ? "" : " acked");
}

static PyMemberDef Message_members[] = {
    {"producer_id", T_UINT, offsetof(MessageObject, message.producer_id), READONLY,
     "The sender's producer table entry."},
    {"seq", T_ULONGLONG, offsetof(MessageObject, message.sequence), READONLY, "The producer's sequence."},
    {"position", T_ULONGLONG, offsetof(MessageObject, message.position), READONLY,
     "The log position: the queue's total order."},
    {"timestamp_ns", T_ULONGLONG, offsetof(MessageObject, message.timestamp_ns), READONLY,
     "CLOCK_REALTIME at send, in nanoseconds."},
    {"redelivered", T_BOOL, offsetof(MessageObject, message.redelivered), READONLY,
     "Delivered before: its holder died (or left), nacked it or passed the queue's ack timeout."},
    {"deliveries", T_USHORT, offsetof(MessageObject, message.deliveries), READONLY,
     "Deliveries of this message to this group, this one included: 1 the first time."},
    {NULL},
};

static PyGetSetDef Message_getset[] = {
    {"payload", (getter)Message_get_payload, NULL,
     "A read-only memoryview into shared memory, valid until the message is acked (then released).", NULL},
    {"producer", (getter)Message_get_producer, NULL, "The sender's producer name (\"\" where unknown).", NULL},
    {"dead_letter", (getter)Message_get_dead_letter, NULL,
     "For a message of a dead-letter queue, where it came from (a DeadLetter); None for any other. Read it "
     "while the message is held (then it is kept).", NULL},
    {"held", (getter)Message_get_held, NULL, "Whether the message is still held (not acked).", NULL},
    {"consumer", (getter)Message_get_consumer, NULL, "The consumer that received it.", NULL},
    {NULL},
};

static PyMethodDef Message_methods[] = {
    {"__bytes__", (PyCFunction)Message_bytes, METH_NOARGS, "A copy of the payload."},
    {NULL},
};

static PyTypeObject MessageType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmq.Message",
    .tp_basicsize = sizeof(MessageObject),
    .tp_dealloc = (destructor)Message_dealloc,
    .tp_repr = (reprfunc)Message_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A received message, held by its consumer until acked.",
    .tp_methods = Message_methods,
    .tp_members = Message_members,
    .tp_getset = Message_getset,
};

static PyObject* Queue_consumer(QueueObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  static const char* const params[] = {"group", "prefetch", "start", "start_position", "start_time_ns",
                                       "spin", "journal_dir", "exclusive"};
  PyObject* values[8];
  if (parse_args("consumer", args, nargs, kwnames, params, 8, 1, 1, values) < 0) return NULL;
  if (queue_check_open(self) < 0) return NULL;
  const char* group = name_arg(values[0], "group");
  if (group == NULL) return NULL;
  shmq_consumer_options_t options;
  shmq_consumer_options_init(&options);
  if (u32_arg(values[1], "prefetch", &options.prefetch) < 0 || u32_arg(values[5], "spin", &options.wait_spin) < 0 ||
      bool_arg(values[7], &options.exclusive) < 0) {
    return NULL;
  }
  if (values[2] != NULL && values[2] != Py_None) {
    if (!PyUnicode_Check(values[2])) {
      PyErr_SetString(PyExc_TypeError, "start must be 'oldest' or 'newest'");
      return NULL;
    }
    if (PyUnicode_CompareWithASCIIString(values[2], "oldest") == 0) options.start = SHMQ_START_OLDEST;
    else if (PyUnicode_CompareWithASCIIString(values[2], "newest") == 0) options.start = SHMQ_START_NEWEST;
    else return raise_invalid("start must be 'oldest' or 'newest', not '%s'", PyUnicode_AsUTF8(values[2]));
  }
  const int by_position = values[3] != NULL && values[3] != Py_None;
  const int by_time = values[4] != NULL && values[4] != Py_None;
  if (by_position && by_time) return raise_invalid("give start_position or start_time_ns, not both");
  if (by_position) {
    options.start = SHMQ_START_POSITION;
    if (u64_arg(values[3], "start_position", &options.start_position) < 0) return NULL;
  }
  if (by_time) {
    options.start = SHMQ_START_TIME;
    if (u64_arg(values[4], "start_time_ns", &options.start_time_ns) < 0) return NULL;
  }
  PyObject* journal_dir = NULL;
  if (values[6] != NULL && values[6] != Py_None) {
    if (!PyUnicode_FSConverter(values[6], &journal_dir)) return NULL;
    options.journal_dir = PyBytes_AS_STRING(journal_dir);
  }
  shmq_consumer_t* handle = NULL;
  const shmq_status_t status = shmq_consumer_join(self->queue, group, &options, &handle);
  Py_XDECREF(journal_dir);
  if (status != SHMQ_OK) return raise_setup(status);
  ConsumerObject* consumer = PyObject_New(ConsumerObject, &ConsumerType);
  if (consumer == NULL) {
    shmq_consumer_close(handle);
    return NULL;
  }
  consumer->base.open = 1;
  consumer->base.busy = 0;
  consumer->base.close_pending = 0;
  consumer->base.kind = "consumer";
  consumer->consumer = handle;
  consumer->queue = (QueueObject*)Py_NewRef(self);
  consumer->group = Py_NewRef(values[0]);
  consumer->held = NULL;
  consumer->unresolved = NULL;
  consumer->exporters = NULL;
  consumer->names = NULL;
  return (PyObject*)consumer;
}

static void consumer_free_names(ConsumerObject* self) {
  if (self->names == NULL) return;
  for (int i = 0; i < NAME_CACHE_SIZE; i++) Py_XDECREF(self->names[i].name);
  PyMem_Free(self->names);
  self->names = NULL;
}

static void Consumer_dealloc(ConsumerObject* self) {
  /* No Message nor exporter can be alive here: each holds a reference. */
  shmq_consumer_close(self->consumer);
  consumer_free_names(self);
  Py_XDECREF(self->queue);
  Py_XDECREF(self->group);
  PyObject_Free(self);
}

static inline int consumer_ready(ConsumerObject* self) {
  if (self->consumer == NULL || self->base.close_pending) {
    raise_closed(&self->base);
    return -1;
  }
  if (self->base.busy) {
    raise_busy(&self->base);
    return -1;
  }
  return 0;
}

static PyObject* raise_receive_status(ConsumerObject* self, shmq_status_t status) {
  if (status == SHMQ_JOURNAL_UNREADABLE && self->consumer != NULL) {
    const char* why = shmq_consumer_journal_error(self->consumer);
    if (why != NULL && why[0] != '\0') return raise_status_msg(status, why);
  }
  if (status == SHMQ_IN_FLIGHT_LIMIT) {
    return raise_status_msg(status, "in-flight limit: the consumer holds `prefetch` unacknowledged messages");
  }
  return raise_status(status);
}

typedef struct {
  shmq_consumer_t* consumer;
  shmq_message_t* out;
} ReceiveSlice;

static shmq_status_t receive_slice(void* context, int64_t slice_ns) {
  ReceiveSlice* r = context;
  return shmq_consumer_receive(r->consumer, r->out, slice_ns);
}

/* One message into *out: at once when there is one, else waiting up to
 * timeout. SHMQ_EMPTY/SHMQ_TIMEOUT: none. -1: an exception is set. */
static int receive_one(ConsumerObject* self, shmq_message_t* out, int64_t timeout, shmq_status_t* status) {
  *status = shmq_consumer_try_receive(self->consumer, out);
  if (*status != SHMQ_EMPTY || timeout == 0) return 0;
  ReceiveSlice r = {self->consumer, out};
  return wait_in_slices(&self->base, receive_slice, &r,
                        deadline_after(timeout), status);
}

static PyObject* receive_result(ConsumerObject* self, shmq_status_t status, const shmq_message_t* message) {
  if (status == SHMQ_OK) return (PyObject*)message_new(self, message);
  if (status == SHMQ_EMPTY || status == SHMQ_TIMEOUT) Py_RETURN_NONE;
  return raise_receive_status(self, status);
}

static PyObject* Consumer_receive(ConsumerObject* self, PyObject* const* args, Py_ssize_t nargs,
                                  PyObject* kwnames) {
  if (consumer_ready(self) < 0) return NULL;
  int64_t timeout = SHMQ_FOREVER;
  if (nargs != 0 || kwnames != NULL) {
    static const char* const params[] = {"timeout"};
    PyObject* values[1];
    if (parse_args("receive", args, nargs, kwnames, params, 1, 1, 0, values) < 0) return NULL;
    if (timeout_arg(values[0], "timeout", &timeout) < 0) return NULL;
  }
  shmq_message_t message;
  shmq_status_t status;
  if (receive_one(self, &message, timeout, &status) < 0) return NULL;
  return receive_result(self, status, &message);
}

static PyObject* Consumer_try_receive(ConsumerObject* self, PyObject* unused) {
  (void)unused;
  if (consumer_ready(self) < 0) return NULL;
  shmq_message_t message;
  const shmq_status_t status = shmq_consumer_try_receive(self->consumer, &message);
  return receive_result(self, status, &message);
}

/* Appends Message objects for messages[0..count) to list; -1 on failure
 * (the messages stay held by the consumer, as any message nobody acks). */
static int append_messages(ConsumerObject* self, PyObject* list, const shmq_message_t* messages, size_t count) {
  for (size_t i = 0; i < count; i++) {
    MessageObject* m = message_new(self, &messages[i]);
    if (m == NULL) return -1;
    const int result = PyList_Append(list, (PyObject*)m);
    Py_DECREF(m);
    if (result < 0) return -1;
  }
  return 0;
}

static PyObject* Consumer_receive_batch(ConsumerObject* self, PyObject* const* args, Py_ssize_t nargs,
                                        PyObject* kwnames) {
  if (consumer_ready(self) < 0) return NULL;
  static const char* const params[] = {"max", "timeout"};
  PyObject* values[2];
  if (parse_args("receive_batch", args, nargs, kwnames, params, 2, 2, 0, values) < 0) return NULL;
  uint64_t max = 256;
  int64_t timeout;
  if (u64_arg(values[0], "max", &max) < 0 || timeout_arg(values[1], "timeout", &timeout) < 0) return NULL;
  if (max == 0) return raise_invalid("max must be at least 1");
  PyObject* list = PyList_New(0);
  if (list == NULL) return NULL;
  shmq_message_t chunk[BATCH_CHUNK];
  size_t taken = 0;
  int waited = 0;
  while (taken < max) {
    const size_t want = max - taken < BATCH_CHUNK ? (size_t)(max - taken) : BATCH_CHUNK;
    size_t count = 0;
    shmq_status_t status = shmq_consumer_try_receive_batch(self->consumer, chunk, want, &count);
    if (count == 0 && taken == 0 && !waited && status == SHMQ_EMPTY && timeout != 0) {
      /* Nothing there: wait for the first, then take what else is there. */
      waited = 1;
      if (receive_one(self, chunk, timeout, &status) < 0) goto error;
      if (status == SHMQ_OK) {
        if (append_messages(self, list, chunk, 1) < 0) goto error;
        taken = 1;
        continue;
      }
    }
    if (count == 0) {
      if (taken > 0 || status == SHMQ_EMPTY || status == SHMQ_TIMEOUT || status == SHMQ_OK) break;
      raise_receive_status(self, status);
      goto error;
    }
    if (append_messages(self, list, chunk, count) < 0) goto error;
    taken += count;
    if (count < want) break; /* drained */
  }
  return list;
error:
  Py_DECREF(list);
  return NULL;
}

static PyObject* Consumer_iternext(ConsumerObject* self) {
  if (consumer_ready(self) < 0) return NULL;
  shmq_message_t message;
  shmq_status_t status;
  if (receive_one(self, &message, SHMQ_FOREVER, &status) < 0) return NULL;
  if (status == SHMQ_DELETED) return NULL; /* the queue is gone: the iteration ends */
  return receive_result(self, status, &message);
}

/* Before messages leave the consumer (ack, ack_up_to, close): their payload
 * views released, no other buffer of them alive. `all`: every message, else
 * those at positions <= up_to. On failure nothing is acked; views already
 * released are dropped, so .payload makes fresh ones. */
static int release_payloads(ConsumerObject* self, int all, uint64_t up_to) {
  for (MessageObject* m = self->held; m != NULL; m = m->next) {
    if (!all && m->message.position > up_to) continue;
    if (release_view(&m->view, m->payload, "payload") < 0) goto undo;
  }
  /* Exporters of messages whose Message object is gone, whose slices live on. */
  for (PayloadObject* p = self->exporters; p != NULL; p = p->next) {
    if (p->valid && p->exports > 0 && (all || p->position <= up_to)) {
      PyErr_SetString(PyExc_BufferError,
                      "a slice or other buffer taken from a payload is still alive; copy it (bytes()) before "
                      "acking");
      goto undo;
    }
  }
  return 0;
undo:
  for (MessageObject* m = self->held; m != NULL; m = m->next) {
    if (all || m->message.position <= up_to) Py_CLEAR(m->view);
  }
  return -1;
}

/* Before the consumer closes (its mapping may go with it): the producer names
 * of its Message objects still alive, read while they can be. */
static void resolve_producers(ConsumerObject* self) {
  for (MessageObject* m = self->held; m != NULL; m = m->next) {
    if (message_resolve_producer(m) < 0) PyErr_Clear();
  }
  while (self->unresolved != NULL) {
    MessageObject* m = self->unresolved;
    if (message_resolve_producer(m) < 0) {
      PyErr_Clear();
      m->producer = PyUnicode_FromString("");
      message_unlink(m);
    }
  }
}

typedef shmq_status_t (*SettleCall)(shmq_consumer_t*, const shmq_message_t*);

/* ack, nack and reject: `settle` the message. It is released when it went
 * (acked, to the group, or to the dead-letter queue) or went back past its
 * ack deadline; it stays held otherwise (reject's Full or Timeout: try again). */
static PyObject* consumer_settle(ConsumerObject* self, PyObject* const* args, Py_ssize_t nargs, const char* what,
                                 SettleCall settle) {
  if (consumer_ready(self) < 0) return NULL;
  if (nargs != 1) {
    PyErr_Format(PyExc_TypeError, "%s() takes exactly one argument (%zd given)", what, nargs);
    return NULL;
  }
  if (Py_TYPE(args[0]) != &MessageType) {
    PyErr_Format(PyExc_TypeError, "%s() takes a shmq.Message, not %.100s", what, Py_TYPE(args[0])->tp_name);
    return NULL;
  }
  MessageObject* m = (MessageObject*)args[0];
  if (m->consumer != self) {
    return raise_status_msg(SHMQ_NOT_IN_FLIGHT, "not in flight: the message was received by another consumer");
  }
  if (!m->held) return raise_status_msg(SHMQ_NOT_IN_FLIGHT, "not in flight: the message was already released");
  if (m->payload != NULL && release_view(&m->view, m->payload, "payload") < 0) return NULL;
  const shmq_status_t status = settle(self->consumer, &m->message);
  if (status != SHMQ_OK) {
    Py_CLEAR(m->view);
    if (status == SHMQ_LEASE_EXPIRED) message_mark_released(m);
    return raise_status(status);
  }
  message_mark_released(m);
  Py_RETURN_NONE;
}

static PyObject* Consumer_ack(ConsumerObject* self, PyObject* const* args, Py_ssize_t nargs) {
  return consumer_settle(self, args, nargs, "ack", shmq_consumer_ack);
}

static PyObject* Consumer_nack(ConsumerObject* self, PyObject* const* args, Py_ssize_t nargs) {
  return consumer_settle(self, args, nargs, "nack", shmq_consumer_nack);
}

static PyObject* Consumer_reject(ConsumerObject* self, PyObject* const* args, Py_ssize_t nargs) {
  return consumer_settle(self, args, nargs, "reject", shmq_consumer_reject);
}

static PyObject* Consumer_ack_up_to(ConsumerObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (consumer_ready(self) < 0) return NULL;
  if (nargs != 1) {
    PyErr_Format(PyExc_TypeError, "ack_up_to() takes exactly one argument (%zd given)", nargs);
    return NULL;
  }
  uint64_t position = 0;
  if (u64_arg(args[0], "position", &position) < 0) return NULL;
  if (release_payloads(self, 0, position) < 0) return NULL;
  size_t count = 0;
  const shmq_status_t status = shmq_consumer_ack_up_to(self->consumer, position, &count);
  if (status != SHMQ_OK) return raise_status(status);
  MessageObject* next;
  for (MessageObject* m = self->held; m != NULL; m = next) {
    next = m->next;
    if (m->message.position <= position) message_mark_released(m);
  }
  for (PayloadObject* p = self->exporters; p != NULL; p = p->next) {
    if (p->position <= position) p->valid = 0;
  }
  return PyLong_FromSize_t(count);
}

static PyObject* Consumer_close(ConsumerObject* self, PyObject* unused) {
  (void)unused;
  wait_until_idle(&self->base);
  if (self->consumer == NULL) Py_RETURN_NONE;
  if (release_payloads(self, 1, 0) < 0) return NULL;
  resolve_producers(self);
  shmq_consumer_close(self->consumer);
  self->consumer = NULL;
  self->base.open = 0;
  while (self->held != NULL) {
    MessageObject* m = self->held;
    if (m->producer == NULL) m->producer = PyUnicode_FromString("");
    message_mark_released(m);
  }
  for (PayloadObject* p = self->exporters; p != NULL; p = p->next) p->valid = 0;
  consumer_free_names(self);
  Py_RETURN_NONE;
}

static PyObject* Consumer_enter(ConsumerObject* self, PyObject* unused) {
  (void)unused;
  if (consumer_ready(self) < 0) return NULL;
  return Py_NewRef(self);
}

static PyObject* Consumer_exit(ConsumerObject* self, PyObject* const* args, Py_ssize_t nargs) {
  (void)args;
  (void)nargs;
  return Consumer_close(self, NULL);
}

static PyObject* Consumer_iter(ConsumerObject* self) {
  if (consumer_ready(self) < 0) return NULL;
  return Py_NewRef(self);
}

static PyObject* Consumer_get_index(ConsumerObject* self, void* unused) {
  (void)unused;
  if (consumer_ready(self) < 0) return NULL;
  return PyLong_FromUnsignedLong(shmq_consumer_index(self->consumer));
}

static PyObject* Consumer_get_created_group(ConsumerObject* self, void* unused) {
  (void)unused;
  if (consumer_ready(self) < 0) return NULL;
  return PyBool_FromLong(shmq_consumer_created_group(self->consumer));
}

static PyObject* Consumer_get_in_flight(ConsumerObject* self, void* unused) {
  (void)unused;
  if (consumer_ready(self) < 0) return NULL;
  return PyLong_FromUnsignedLong(shmq_consumer_in_flight(self->consumer));
}

static PyObject* Consumer_get_active(ConsumerObject* self, void* unused) {
  (void)unused;
  if (consumer_ready(self) < 0) return NULL;
  return PyBool_FromLong(shmq_consumer_active(self->consumer));
}

static PyObject* Consumer_get_closed(ConsumerObject* self, void* unused) {
  (void)unused;
  return PyBool_FromLong(self->consumer == NULL);
}

static PyObject* Consumer_repr(ConsumerObject* self) {
  return PyUnicode_FromFormat("<shmq.Consumer group %R of queue %R%s>", self->group, self->queue->name,
                              self->consumer == NULL ? " closed" : "");
}

/* ------------------------------------------------------------------------ */
/* Type tables                                                               */

#define FASTCALL_KW (METH_FASTCALL | METH_KEYWORDS)

static PyMethodDef Queue_methods[] = {
    {"create", (PyCFunction)(void (*)(void))Queue_create, FASTCALL_KW | METH_CLASS,
     "create(name, *, capacity=1<<20, max_message=65536, durable=False, mode=0o600, max_producers=64, "
     "max_groups=16, max_consumers=16, group=None, namespace=None, max_deliveries=None, dead_letter=None, "
     "ack_timeout=None, ttl=None) -> Queue\n\nCreates the queue (AlreadyExists if it does). group: the segment "
     "file's group, a name or a gid (None: yours); with mode=0o660 its members may use the queue. The delivery "
     "policy (None: none): max_deliveries (1..254) before a message is dead-lettered; dead_letter, the name of an "
     "existing queue for dead letters (else they are dropped); ack_timeout, how long a member may hold a message; "
     "ttl, how old a message may be when delivered (seconds, or a timedelta)."},
    {"open", (PyCFunction)(void (*)(void))Queue_open, FASTCALL_KW | METH_CLASS,
     "open(name, *, namespace=None) -> Queue\n\nOpens an existing queue (NotFound if none)."},
    {"open_read_only", (PyCFunction)(void (*)(void))Queue_open_read_only, FASTCALL_KW | METH_CLASS,
     "open_read_only(name, *, namespace=None) -> Queue\n\nOpens read-only, for monitoring: no producer or "
     "consumer can be made from it."},
    {"open_or_create", (PyCFunction)(void (*)(void))Queue_open_or_create, FASTCALL_KW | METH_CLASS,
     "open_or_create(name, *, <create's options>, namespace=None, wait_for_rebuild=10.0) -> Queue\n\n"
     "Opens the queue, creating it when it does not exist; a durable queue that shmqd must rebuild "
     "from its journal first is waited for up to wait_for_rebuild seconds."},
    {"remove", (PyCFunction)(void (*)(void))Queue_remove, FASTCALL_KW | METH_CLASS,
     "remove(name, *, namespace=None) -> bool\n\nUnlinks the queue's segment; False when it did not exist."},
    {"list", (PyCFunction)(void (*)(void))Queue_list, FASTCALL_KW | METH_CLASS,
     "list(namespace=None) -> list[str]\n\nNames of the queues in the namespace."},
    {"segment_bytes", (PyCFunction)(void (*)(void))Queue_segment_bytes, FASTCALL_KW | METH_CLASS,
     "segment_bytes(**options) -> int\n\nWhat a queue of these (create's) options takes of the shm directory."},
    {"options", (PyCFunction)Queue_options, METH_NOARGS,
     "options() -> dict\n\nThe options the queue was created with."},
    {"deleted", (PyCFunction)Queue_deleted, METH_NOARGS,
     "deleted() -> bool\n\nWhether the queue was deleted since this handle opened it."},
    {"info", (PyCFunction)Queue_info, METH_NOARGS,
     "info() -> dict\n\nA snapshot of the figures shmq-stat shows."},
    {"delete_group", (PyCFunction)(void (*)(void))Queue_delete_group, FASTCALL_KW,
     "delete_group(group)\n\nRemoves a consumer group (NotFound when none)."},
    {"producer_name", (PyCFunction)(void (*)(void))Queue_producer_name, FASTCALL_KW,
     "producer_name(id) -> str\n\nThe name in producer table entry `id` (\"\" when free)."},
    {"producer", (PyCFunction)(void (*)(void))Queue_producer, FASTCALL_KW,
     "producer(name, *, spin=4000, precise_timestamps=False) -> Producer\n\nAttaches a producer under "
     "`name`, resuming its sequence (NameInUse while a live one holds it)."},
    {"consumer", (PyCFunction)(void (*)(void))Queue_consumer, FASTCALL_KW,
     "consumer(group, *, prefetch=256, start='oldest', start_position=None, start_time_ns=None, spin=4000, "
     "journal_dir=None, exclusive=False) -> Consumer\n\nJoins consumer group `group`, creating it when it does "
     "not exist. exclusive=True: an exclusive group, where one member at a time reads, in order, and the others "
     "stand by (Consumer.active is False) until it leaves or dies; the group's creator sets its mode, and joining "
     "with the other mode raises InvalidArgument."},
    {"close", (PyCFunction)Queue_close, METH_NOARGS,
     "close()\n\nCloses the handle (idempotent); its producers and consumers keep working."},
    {"__enter__", (PyCFunction)Queue_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))Queue_exit, METH_FASTCALL, NULL},
    {NULL},
};

static PyGetSetDef Queue_getset[] = {
    {"name", (getter)Queue_get_name, NULL, "The queue's name.", NULL},
    {"namespace", (getter)Queue_get_namespace, NULL, "The queue's namespace.", NULL},
    {"closed", (getter)Queue_get_closed, NULL, "Whether close() was called.", NULL},
    {NULL},
};

static PyTypeObject QueueType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmq.Queue",
    .tp_basicsize = sizeof(QueueObject),
    .tp_dealloc = (destructor)Queue_dealloc,
    .tp_repr = (reprfunc)Queue_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A queue: one shared-memory segment. Made by Queue.create(), open(), open_or_create().",
    .tp_methods = Queue_methods,
    .tp_getset = Queue_getset,
};

static PyMethodDef Producer_methods[] = {
    {"send", (PyCFunction)(void (*)(void))Producer_send, FASTCALL_KW,
     "send(data, *, seq=None, durable=False, timeout=None) -> int\n\nSends a bytes-like payload and returns "
     "its sequence. Waits while the ring is full (timeout None: for ever; Timeout when it passes)."},
    {"try_send", (PyCFunction)(void (*)(void))Producer_try_send, FASTCALL_KW,
     "try_send(data, *, seq=None) -> int\n\nSends without waiting: Full when there is no room."},
    {"send_many", (PyCFunction)(void (*)(void))Producer_send_many, FASTCALL_KW,
     "send_many(messages, *, timeout=None) -> int\n\nSends each bytes-like of an iterable; returns the "
     "sequence of the last one."},
    {"wait_durable", (PyCFunction)(void (*)(void))Producer_wait_durable, FASTCALL_KW,
     "wait_durable(timeout=None)\n\nDurable queues: waits until everything this producer name sent is on "
     "disk."},
    {"claim", (PyCFunction)(void (*)(void))Producer_claim, FASTCALL_KW,
     "claim(size, *, seq=None, timeout=None) -> memoryview\n\nZero copy: room for `size` bytes in the ring, "
     "to fill, then commit() (or abort())."},
    {"claim_many", (PyCFunction)(void (*)(void))Producer_claim_many, FASTCALL_KW,
     "claim_many(sizes, *, timeout=None) -> list[memoryview]\n\nZero copy, several records with one move of the "
     "ring's tail: a view of each of the first `sizes` that fit in one stretch before the ring's end and in the "
     "room left (claim the rest after the commit). Fill them, then commit() (or abort()) them all."},
    {"commit", (PyCFunction)Producer_commit, METH_NOARGS,
     "commit() -> int\n\nCommits the claim (all of claim_many's records, in order); returns the (last) record's "
     "log position. The claim's memoryviews are released."},
    {"abort", (PyCFunction)Producer_abort, METH_NOARGS,
     "abort()\n\nTurns the open claim (if any, all its records) into a skipped record."},
    {"close", (PyCFunction)Producer_close, METH_NOARGS, "close()\n\nDetaches (idempotent)."},
    {"__enter__", (PyCFunction)Producer_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))Producer_exit, METH_FASTCALL, NULL},
    {NULL},
};

static PyMemberDef Producer_members[] = {
    {"name", T_OBJECT, offsetof(ProducerObject, name), READONLY, "The producer's name."},
    {"queue", T_OBJECT, offsetof(ProducerObject, queue), READONLY, "The queue it sends to."},
    {NULL},
};

static PyGetSetDef Producer_getset[] = {
    {"id", (getter)Producer_get_id, NULL, "The producer table entry (Message.producer_id).", NULL},
    {"last_sequence", (getter)Producer_get_last_sequence, NULL,
     "The last sequence the queue committed from this name.", NULL},
    {"last_position", (getter)Producer_get_last_position, NULL,
     "The log position of the last record this handle committed.", NULL},
    {"closed", (getter)Producer_get_closed, NULL, "Whether close() was called.", NULL},
    {NULL},
};

static PyTypeObject ProducerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmq.Producer",
    .tp_basicsize = sizeof(ProducerObject),
    .tp_dealloc = (destructor)Producer_dealloc,
    .tp_repr = (reprfunc)Producer_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A producer attached to a queue under a name. Made by Queue.producer().",
    .tp_methods = Producer_methods,
    .tp_members = Producer_members,
    .tp_getset = Producer_getset,
};

static PyMethodDef Consumer_methods[] = {
    {"receive", (PyCFunction)(void (*)(void))Consumer_receive, FASTCALL_KW,
     "receive(timeout=None) -> Message | None\n\nThe next message; waits up to timeout seconds (None: for "
     "ever) and returns None when none came."},
    {"try_receive", (PyCFunction)Consumer_try_receive, METH_NOARGS,
     "try_receive() -> Message | None\n\nThe next message if there is one, without waiting."},
    {"receive_batch", (PyCFunction)(void (*)(void))Consumer_receive_batch, FASTCALL_KW,
     "receive_batch(max=256, timeout=None) -> list[Message]\n\nWaits up to timeout for the first message, "
     "then takes what else is there, up to max, without waiting."},
    {"ack", (PyCFunction)(void (*)(void))Consumer_ack, METH_FASTCALL,
     "ack(message)\n\nAcknowledges a message this consumer holds; its payload view is released (BufferError, "
     "and no ack, while a slice of it is alive)."},
    {"nack", (PyCFunction)(void (*)(void))Consumer_nack, METH_FASTCALL,
     "nack(message)\n\nGives a held message back to its group at once: it comes again, redelivered, before "
     "newer messages, and counts a delivery (past the queue's max_deliveries it is dead-lettered instead). Its "
     "payload view is released, as at ack."},
    {"reject", (PyCFunction)(void (*)(void))Consumer_reject, METH_FASTCALL,
     "reject(message)\n\nSends a held message to the queue's dead-letter queue (reason 'rejected'), or drops "
     "it, counted, where the queue has none. Full or Timeout when the dead-letter queue has no room: the "
     "message stays held."},
    {"ack_up_to", (PyCFunction)(void (*)(void))Consumer_ack_up_to, METH_FASTCALL,
     "ack_up_to(position) -> int\n\nAcknowledges every held message at a position <= `position`; returns how "
     "many."},
    {"close", (PyCFunction)Consumer_close, METH_NOARGS,
     "close()\n\nLeaves the group (idempotent): what it holds goes back to the group, redelivered."},
    {"__enter__", (PyCFunction)Consumer_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))Consumer_exit, METH_FASTCALL, NULL},
    {NULL},
};

static PyMemberDef Consumer_members[] = {
    {"group", T_OBJECT, offsetof(ConsumerObject, group), READONLY, "The consumer group's name."},
    {"queue", T_OBJECT, offsetof(ConsumerObject, queue), READONLY, "The queue it reads."},
    {NULL},
};

static PyGetSetDef Consumer_getset[] = {
    {"index", (getter)Consumer_get_index, NULL, "The consumer's entry in its group.", NULL},
    {"created_group", (getter)Consumer_get_created_group, NULL,
     "Whether joining created the group (so `start` applied).", NULL},
    {"in_flight", (getter)Consumer_get_in_flight, NULL, "How many messages it holds unacknowledged.", NULL},
    {"active", (getter)Consumer_get_active, NULL,
     "Whether it reads: always in a competing group; in an exclusive group, while it is the active member (a "
     "standby's receive waits for that).", NULL},
    {"closed", (getter)Consumer_get_closed, NULL, "Whether close() was called.", NULL},
    {NULL},
};

static PyTypeObject ConsumerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmq.Consumer",
    .tp_basicsize = sizeof(ConsumerObject),
    .tp_dealloc = (destructor)Consumer_dealloc,
    .tp_repr = (reprfunc)Consumer_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A member of a consumer group. Made by Queue.consumer(). Iterating receives for ever (until "
              "the queue is deleted).",
    .tp_iter = (getiterfunc)Consumer_iter,
    .tp_iternext = (iternextfunc)Consumer_iternext,
    .tp_methods = Consumer_methods,
    .tp_members = Consumer_members,
    .tp_getset = Consumer_getset,
};

/* ------------------------------------------------------------------------ */
/* Module                                                                    */

static PyObject* module_set_errors(PyObject* module, PyObject* const* args, Py_ssize_t nargs) {
  (void)module;
  if (nargs != 2 || !PyType_Check(args[0]) || !PyDict_Check(args[1])) {
    PyErr_SetString(PyExc_TypeError, "_set_errors(base, {code: class})");
    return NULL;
  }
  Py_XSETREF(error_base, Py_NewRef(args[0]));
  Py_XSETREF(error_by_code, Py_NewRef(args[1]));
  Py_RETURN_NONE;
}

static PyObject* module_status_str(PyObject* module, PyObject* code) {
  (void)module;
  const long value = PyLong_AsLong(code);
  if (value == -1 && PyErr_Occurred()) return NULL;
  return PyUnicode_FromString(shmq_status_str((shmq_status_t)value));
}

static PyObject* module_version(PyObject* module, PyObject* unused) {
  (void)module;
  (void)unused;
  return PyUnicode_FromString(shmq_version());
}

static PyObject* module_daemon_pid(PyObject* module, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  (void)module;
  static const char* const params[] = {"namespace"};
  PyObject* values[1];
  if (parse_args("daemon_pid", args, nargs, kwnames, params, 1, 1, 0, values) < 0) return NULL;
  const char* ns = NULL;
  if (namespace_arg(values[0], &ns) < 0) return NULL;
  int64_t pid = 0;
  const shmq_status_t status = shmq_daemon_pid(ns, &pid);
  if (status != SHMQ_OK) return raise_setup(status);
  if (pid == 0) Py_RETURN_NONE;
  return PyLong_FromLongLong(pid);
}

static PyObject* module_shm_dir(PyObject* module, PyObject* unused) {
  (void)module;
  (void)unused;
  size_t length = 0;
  shmq_status_t status = shmq_shm_dir(NULL, 0, &length);
  if (status != SHMQ_OK) return raise_setup(status);
  char* buf = PyMem_Malloc(length + 1);
  if (buf == NULL) return PyErr_NoMemory();
  status = shmq_shm_dir(buf, length + 1, &length);
  PyObject* result = status == SHMQ_OK ? PyUnicode_DecodeFSDefault(buf) : raise_setup(status);
  PyMem_Free(buf);
  return result;
}

static PyObject* module_daemon_data_dir(PyObject* module, PyObject* const* args, Py_ssize_t nargs,
                                        PyObject* kwnames) {
  (void)module;
  static const char* const params[] = {"namespace"};
  PyObject* values[1];
  if (parse_args("daemon_data_dir", args, nargs, kwnames, params, 1, 1, 0, values) < 0) return NULL;
  const char* ns = NULL;
  if (namespace_arg(values[0], &ns) < 0) return NULL;
  size_t length = 0;
  shmq_status_t status = shmq_daemon_data_dir(ns, NULL, 0, &length);
  /* Asked twice, the answer may grow meanwhile (a shmqd starting): again until it fits. */
  for (;;) {
    if (status != SHMQ_OK) return raise_setup(status);
    const size_t size = length + 1;
    char* buf = PyMem_Malloc(size);
    if (buf == NULL) return PyErr_NoMemory();
    status = shmq_daemon_data_dir(ns, buf, size, &length);
    if (status == SHMQ_OK && length < size) {
      PyObject* result = PyUnicode_DecodeFSDefault(buf);
      PyMem_Free(buf);
      return result;
    }
    PyMem_Free(buf);
  }
}

static PyMethodDef module_methods[] = {
    {"_set_errors", (PyCFunction)(void (*)(void))module_set_errors, METH_FASTCALL,
     "_set_errors(base, {code: class}): the exception classes, from shmq/__init__.py."},
    {"status_str", (PyCFunction)module_status_str, METH_O, "status_str(code) -> str: a status code's short name."},
    {"version", (PyCFunction)module_version, METH_NOARGS, "version() -> str: libshmq's version."},
    {"shm_dir", (PyCFunction)module_shm_dir, METH_NOARGS,
     "shm_dir() -> str: the directory every segment lives in ($SHMQ_SHM_DIR, else /dev/shm)."},
    {"daemon_pid", (PyCFunction)(void (*)(void))module_daemon_pid, METH_FASTCALL | METH_KEYWORDS,
     "daemon_pid(namespace=None) -> int | None: the pid of the namespace's running shmqd, None when none runs."},
    {"daemon_data_dir", (PyCFunction)(void (*)(void))module_daemon_data_dir, METH_FASTCALL | METH_KEYWORDS,
     "daemon_data_dir(namespace=None) -> str: where the namespace's shmqd keeps its data."},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "shmq._shmq",
    .m_doc = "shmq's CPython extension over the C API (shmq.h); use the `shmq` package.",
    .m_size = -1,
    .m_methods = module_methods,
};

static int add_type(PyObject* module, PyTypeObject* type, const char* name) {
  if (PyType_Ready(type) < 0) return -1;
  return PyModule_AddObjectRef(module, name, (PyObject*)type);
}

static int add_int(PyObject* module, const char* name, long value) {
  return PyModule_AddIntConstant(module, name, value);
}

PyMODINIT_FUNC PyInit__shmq(void) {
  memoryview_release = PyObject_GetAttrString((PyObject*)&PyMemoryView_Type, "release");
  if (memoryview_release == NULL) return NULL;
  PyObject* module = PyModule_Create(&module_def);
  if (module == NULL) return NULL;
  if (add_type(module, &QueueType, "Queue") < 0 || add_type(module, &ProducerType, "Producer") < 0 ||
      add_type(module, &ConsumerType, "Consumer") < 0 || add_type(module, &MessageType, "Message") < 0 ||
      add_type(module, &PayloadType, "_Payload") < 0) {
    Py_DECREF(module);
    return NULL;
  }
  if (DeadLetterType == NULL) DeadLetterType = PyStructSequence_NewType(&DeadLetter_desc);
  if (DeadLetterType == NULL || PyModule_AddObjectRef(module, "DeadLetter", (PyObject*)DeadLetterType) < 0) {
    Py_DECREF(module);
    return NULL;
  }
  static const struct {
    const char* name;
    long value;
  } codes[] = {
      {"OK", SHMQ_OK},
      {"EMPTY", SHMQ_EMPTY},
      {"FULL", SHMQ_FULL},
      {"DUPLICATE", SHMQ_DUPLICATE},
      {"TIMEOUT", SHMQ_TIMEOUT},
      {"TOO_LARGE", SHMQ_TOO_LARGE},
      {"IN_FLIGHT_LIMIT", SHMQ_IN_FLIGHT_LIMIT},
      {"NOT_IN_FLIGHT", SHMQ_NOT_IN_FLIGHT},
      {"CORRUPT", SHMQ_CORRUPT},
      {"NOT_DURABLE", SHMQ_NOT_DURABLE},
      {"JOURNAL_UNREADABLE", SHMQ_JOURNAL_UNREADABLE},
      {"DELETED", SHMQ_DELETED},
      {"LEASE_EXPIRED", SHMQ_LEASE_EXPIRED},
      {"DEAD_LETTER_OVERHEAD", SHMQ_DEAD_LETTER_OVERHEAD},
      {"MAX_DELIVERIES_LIMIT", SHMQ_MAX_DELIVERIES_LIMIT},
      {"INVALID_NAME", SHMQ_INVALID_NAME},
      {"INVALID_ARGUMENT", SHMQ_INVALID_ARGUMENT},
      {"NOT_FOUND", SHMQ_NOT_FOUND},
      {"ALREADY_EXISTS", SHMQ_ALREADY_EXISTS},
      {"PERMISSION_DENIED", SHMQ_PERMISSION_DENIED},
      {"NOT_READY", SHMQ_NOT_READY},
      {"INCOMPATIBLE", SHMQ_INCOMPATIBLE},
      {"CORRUPT_HEADER", SHMQ_CORRUPT_HEADER},
      {"WRONG_NAMESPACE", SHMQ_WRONG_NAMESPACE},
      {"TABLE_FULL", SHMQ_TABLE_FULL},
      {"NAME_IN_USE", SHMQ_NAME_IN_USE},
      {"NO_SPACE", SHMQ_NO_SPACE},
      {"NEEDS_REBUILD", SHMQ_NEEDS_REBUILD},
      {"SYSTEM", SHMQ_SYSTEM},
      {"NO_MEMORY", SHMQ_NO_MEMORY},
      {"INTERNAL", SHMQ_INTERNAL},
  };
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    if (add_int(module, codes[i].name, codes[i].value) < 0) {
      Py_DECREF(module);
      return NULL;
    }
  }
  return module;
}
