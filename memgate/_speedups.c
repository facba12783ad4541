/*
 * memgate._speedups: the hot loops of memgate in C, optional.
 *
 * memgate is complete without this module: numpy decodes and aggregates profiles everywhere
 * (memgate/profile/wire.py, memgate/table.py). Where a C compiler was available at install
 * time, these loops do the same work in one pass over the data instead of numpy's twenty-odd,
 * which is what it takes to be an order of magnitude faster than `go tool pprof` on a
 * million-sample profile. Both paths are tested against the same pprof goldens.
 *
 * The functions only read and write caller-provided buffers, release the GIL, and return a
 * status instead of raising for malformed input: the caller then takes the numpy path, whose
 * errors name the problem precisely.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Read one varint at *p (< end). Returns 0 on success. */
static inline int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
    uint64_t v = 0;
    int shift = 0;
    const uint8_t *q = *p;
    while (q < end) {
        uint8_t b = *q++;
        if (shift == 63 && b > 1) return -1;   /* more than 64 bits */
        if (shift < 64) v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) { *p = q; *out = v; return 0; }
        shift += 7;
        if (shift >= 70) return -1;   /* more than ten bytes */
    }
    return -1;
}

/* Skip a field of wire type wt. Returns 0 on success. */
static inline int skip_field(const uint8_t **p, const uint8_t *end, int wt) {
    uint64_t v;
    switch (wt) {
    case 0: return read_varint(p, end, &v);
    case 1: if (end - *p < 8) return -1; *p += 8; return 0;
    case 5: if (end - *p < 4) return -1; *p += 4; return 0;
    case 2:
        if (read_varint(p, end, &v)) return -1;
        if (v > (uint64_t)(end - *p)) return -1;
        *p += v;
        return 0;
    default: return -1;
    }
}

/* Store one location id (field 1) or value (field 2) of a sample. Returns 0 on success. */
static inline int put(int field, uint64_t v, uint64_t *loc_out, Py_ssize_t *nloc,
                      Py_ssize_t loc_cap, int64_t *row, int *nv, int n_types) {
    if (field == 1) {
        if (*nloc >= loc_cap) return -1;
        loc_out[(*nloc)++] = v;
    } else {
        if (*nv >= n_types) return -1;
        row[(*nv)++] = (int64_t)v;
    }
    return 0;
}

/*
 * decode_samples(buf, lengths, n_types, loc_ids, loc_counts, values, labels) -> int
 *
 * buf: the concatenated bodies of n Sample messages; lengths: int64[n] their sizes.
 * Writes loc_ids (uint64, capacity len(loc_ids)), loc_counts (int64[n]), values
 * (int64[n * n_types]), labels (int64[5 * capacity]: owner, key, str, num, num_unit per label).
 * Returns the number of labels written (>= 0), or -1 when the data is not a plain sequence of
 * well-formed samples with n_types values each (the caller then uses the general path).
 * The total number of location ids written is sum(loc_counts).
 */
static PyObject *decode_samples(PyObject *self, PyObject *args) {
    Py_buffer buf, lens, locs, counts, vals, labels;
    int n_types;
    if (!PyArg_ParseTuple(args, "y*y*iw*w*w*w*", &buf, &lens, &n_types, &locs, &counts,
                          &vals, &labels))
        return NULL;
    Py_ssize_t n = lens.len / 8;
    const int64_t *lengths = (const int64_t *)lens.buf;
    uint64_t *loc_out = (uint64_t *)locs.buf;
    Py_ssize_t loc_cap = locs.len / 8, nloc = 0;
    int64_t *count_out = (int64_t *)counts.buf;
    int64_t *val_out = (int64_t *)vals.buf;
    int64_t *lab_out = (int64_t *)labels.buf;
    Py_ssize_t lab_cap = labels.len / (5 * 8), nlab = 0;
    long status = 0;
    int bad = 0;
    if (counts.len / 8 < n || vals.len / 8 < n * n_types) bad = 1;

    Py_BEGIN_ALLOW_THREADS
    const uint8_t *p = (const uint8_t *)buf.buf;
    const uint8_t *bend = p + buf.len;
    for (Py_ssize_t s = 0; s < n && !bad; s++) {
        if (lengths[s] < 0 || lengths[s] > bend - p) { bad = 1; break; }
        const uint8_t *end = p + lengths[s];
        Py_ssize_t before = nloc;
        int nv = 0;
        while (p < end && !bad) {
            uint64_t key;
            if (read_varint(&p, end, &key)) { bad = 1; break; }
            int field = (int)(key >> 3), wt = (int)(key & 7);
            if (field == 0) { bad = 1; break; }
            if (field == 1 || field == 2) {
                uint64_t v;
                int64_t *row = val_out + s * n_types;
                if (wt == 0) {
                    if (read_varint(&p, end, &v) ||
                        put(field, v, loc_out, &nloc, loc_cap, row, &nv, n_types)) { bad = 1; break; }
                } else if (wt == 2) {   /* packed */
                    uint64_t len;
                    if (read_varint(&p, end, &len) || len > (uint64_t)(end - p)) { bad = 1; break; }
                    const uint8_t *pend = p + len;
                    while (p < pend) {
                        if (read_varint(&p, pend, &v) ||
                            put(field, v, loc_out, &nloc, loc_cap, row, &nv, n_types)) {
                            bad = 1;
                            break;
                        }
                    }
                } else { bad = 1; }
            } else if (field == 3 && wt == 2) {
                uint64_t len;
                if (read_varint(&p, end, &len) || len > (uint64_t)(end - p)) { bad = 1; break; }
                const uint8_t *lend = p + len;
                int64_t lab[5] = {s, 0, 0, 0, 0};
                while (p < lend) {
                    uint64_t lkey, v;
                    if (read_varint(&p, lend, &lkey)) { bad = 1; break; }
                    int lf = (int)(lkey >> 3), lwt = (int)(lkey & 7);
                    if (lf >= 1 && lf <= 4) {
                        if (lwt != 0 || read_varint(&p, lend, &v)) { bad = 1; break; }
                        lab[lf] = (int64_t)v;   /* proto3: the last occurrence wins */
                    } else if (lf == 0 || skip_field(&p, lend, lwt)) { bad = 1; break; }
                }
                if (bad) break;
                if (nlab >= lab_cap) { bad = 1; break; }
                memcpy(lab_out + 5 * nlab, lab, sizeof lab);
                nlab++;
            } else if (skip_field(&p, end, wt)) {
                bad = 1;
            }
        }
        if (bad) break;
        if (nv != n_types) { bad = 1; break; }
        count_out[s] = nloc - before;
    }
    Py_END_ALLOW_THREADS

    status = bad ? -1 : (long)nlab;
    PyBuffer_Release(&buf); PyBuffer_Release(&lens); PyBuffer_Release(&locs);
    PyBuffer_Release(&counts); PyBuffer_Release(&vals); PyBuffer_Release(&labels);
    return PyLong_FromLong(status);
}

/*
 * aggregate(offsets, stack, frame_start, frame_count, frame_node, values, n_types, extra,
 *           n_extra, nnodes, flat, cum, flat_x, cum_x) -> int
 *
 * pprof's flat and cum (graph.newGraph): for sample s with locations
 * stack[offsets[s]:offsets[s+1]] (leaf first), each location's frames are
 * frame_node[frame_start[l] : frame_start[l] + frame_count[l]] (innermost first). Flat goes
 * to the first frame of the first location; cum to every node of the sample once. values is
 * int64[n * n_types], extra float64[n * n_extra] (may be empty); flat/cum int64[nnodes *
 * n_types] and flat_x/cum_x float64[nnodes * n_extra] are accumulated into (+=).
 * Returns 0, or -1 on an out-of-range index.
 */
static PyObject *aggregate(PyObject *self, PyObject *args) {
    Py_buffer off, st, fs, fc, fn, vals, ex, fl, cu, flx, cux;
    int n_types, n_extra, nnodes;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*iy*iiw*w*w*w*", &off, &st, &fs, &fc, &fn, &vals,
                          &n_types, &ex, &n_extra, &nnodes, &fl, &cu, &flx, &cux))
        return NULL;
    const int64_t *offsets = (const int64_t *)off.buf;
    Py_ssize_t n = off.len / 8 - 1;
    const int32_t *stack = (const int32_t *)st.buf;
    Py_ssize_t nstack = st.len / 4;
    const int64_t *fstart = (const int64_t *)fs.buf;
    const int64_t *fcount = (const int64_t *)fc.buf;
    Py_ssize_t nlocs = fs.len / 8;
    const int64_t *fnode = (const int64_t *)fn.buf;
    Py_ssize_t nframes = fn.len / 8;
    const int64_t *v = (const int64_t *)vals.buf;
    const double *x = (const double *)ex.buf;
    int64_t *flat = (int64_t *)fl.buf, *cum = (int64_t *)cu.buf;
    double *flat_x = (double *)flx.buf, *cum_x = (double *)cux.buf;
    int bad = 0;
    if (n < 0 || vals.len / 8 < n * n_types || fl.len / 8 < (Py_ssize_t)nnodes * n_types ||
        cu.len / 8 < (Py_ssize_t)nnodes * n_types ||
        (n_extra > 0 && (ex.len / 8 < n * n_extra ||
                         flx.len / 8 < (Py_ssize_t)nnodes * n_extra ||
                         cux.len / 8 < (Py_ssize_t)nnodes * n_extra)))
        bad = 1;
    int64_t *stamp = NULL;
    if (!bad) {
        stamp = (int64_t *)PyMem_RawMalloc(sizeof(int64_t) * (size_t)(nnodes > 0 ? nnodes : 1));
        if (!stamp) { bad = 1; }
        else for (int i = 0; i < nnodes; i++) stamp[i] = -1;
    }

    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t s = 0; s < n && !bad; s++) {
        int64_t a = offsets[s], b = offsets[s + 1];
        if (a < 0 || b < a || b > nstack) { bad = 1; break; }
        const int64_t *vs = v + s * n_types;
        const double *xs = x + s * n_extra;
        int leaf_done = 0;
        for (int64_t e = a; e < b; e++) {
            int32_t loc = stack[e];
            if (loc < 0 || loc >= nlocs) { bad = 1; break; }
            int64_t f0 = fstart[loc], fcnt = fcount[loc];
            if (f0 < 0 || fcnt < 0 || f0 + fcnt > nframes) { bad = 1; break; }
            for (int64_t f = f0; f < f0 + fcnt; f++) {
                int64_t node = fnode[f];
                if (node < 0 || node >= nnodes) { bad = 1; break; }
                if (!leaf_done) {
                    for (int t = 0; t < n_types; t++) flat[node * n_types + t] += vs[t];
                    for (int t = 0; t < n_extra; t++) flat_x[node * n_extra + t] += xs[t];
                    leaf_done = 1;
                }
                if (stamp[node] != s) {
                    stamp[node] = s;
                    for (int t = 0; t < n_types; t++) cum[node * n_types + t] += vs[t];
                    for (int t = 0; t < n_extra; t++) cum_x[node * n_extra + t] += xs[t];
                }
            }
            if (bad) break;
        }
    }
    Py_END_ALLOW_THREADS

    if (stamp) PyMem_RawFree(stamp);
    PyBuffer_Release(&off); PyBuffer_Release(&st); PyBuffer_Release(&fs);
    PyBuffer_Release(&fc); PyBuffer_Release(&fn); PyBuffer_Release(&vals);
    PyBuffer_Release(&ex); PyBuffer_Release(&fl); PyBuffer_Release(&cu);
    PyBuffer_Release(&flx); PyBuffer_Release(&cux);
    return PyLong_FromLong(bad ? -1 : 0);
}

/*
 * count_top_fields(buf, max_samples, max_locations, max_other, max_strings, max_string_bytes)
 *     -> (samples, mappings, locations, functions, other, strings, string_bytes)
 *
 * Walks the top-level fields of a Profile message and counts samples (field 2), mappings (3),
 * locations (4), functions (5), strings (6, also their total length) and every other field.
 * Stops as soon as a count goes over its maximum (max_locations for each of fields 3 to 5; the
 * returned counts then show which one), at the end, or at the first malformed field or group
 * (the protobuf parser that runs next reports those). Strings are counted among the "other"
 * fields too. The C twin of the walk in memgate.profile.prescan.check_counts.
 */
static PyObject *count_top_fields(PyObject *self, PyObject *args) {
    Py_buffer buf;
    long long max_s, max_l, max_o, max_str, max_str_bytes;
    if (!PyArg_ParseTuple(args, "y*LLLLL", &buf, &max_s, &max_l, &max_o, &max_str,
                          &max_str_bytes)) return NULL;
    long long n[6] = {0, 0, 0, 0, 0, 0};   /* n[2..5] by field number, n[0] the others */
    long long strings = 0, string_bytes = 0;
    Py_BEGIN_ALLOW_THREADS
    const uint8_t *p = (const uint8_t *)buf.buf, *end = p + buf.len;
    while (p < end) {
        uint64_t key;
        if (read_varint(&p, end, &key)) break;
        uint64_t field = key >> 3;
        int wt = (int)(key & 7);
        if (field >= 2 && field <= 5) {
            if (++n[field] > (field == 2 ? max_s : max_l)) break;
        } else if (++n[0] > max_o) {
            break;
        }
        if (wt == 2) {
            uint64_t len;
            if (read_varint(&p, end, &len)) break;
            if (len >= (uint64_t)(end - p)) {
                /* the last field, or past the end */
                if (field == 6 && len == (uint64_t)(end - p)) {
                    ++strings;
                    string_bytes += (long long)len;
                }
                break;
            }
            if (field == 6) {
                if (++strings > max_str) break;
                string_bytes += (long long)len;
                if (string_bytes > max_str_bytes) break;
            }
            p += len;
        } else if (skip_field(&p, end, wt)) {
            break;
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    return Py_BuildValue("(LLLLLLL)", n[2], n[3], n[4], n[5], n[0], strings, string_bytes);
}

static PyMethodDef methods[] = {
    {"decode_samples", decode_samples, METH_VARARGS,
     "Decode concatenated Sample bodies into location ids, values and labels."},
    {"aggregate", aggregate, METH_VARARGS, "Accumulate pprof's flat and cum per node."},
    {"count_top_fields", count_top_fields, METH_VARARGS,
     "Count a Profile's top-level samples, locations, strings and other fields, up to limits."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "memgate._speedups",
    "Optional C loops for decoding and aggregation (numpy does the same without them).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
