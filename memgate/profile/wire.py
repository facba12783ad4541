"""Bulk protobuf wire decoding with numpy.

A Go heap profile of a real service holds up to millions of ``Sample`` messages. Letting the
protobuf runtime build a Python-visible message per sample and reading it field by field costs
seconds per million samples; here the raw bytes of all samples are decoded at once:

* :func:`walk_messages` steps through the fields of *all* messages in lock-step, one field per
  round, so the number of Python-level iterations is the number of fields of the longest message
  (three for a Go sample: packed locations, packed values, one label), not the number of samples.
* :func:`decode_packed` decodes every varint of many packed-repeated payloads in one pass.

Both check every bound: a truncated varint, a length past the end of its message, or a wire type
that cannot occur raises :class:`WireError`, which the decoder turns into a one-line
:class:`~memgate.errors.ProfileError` naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

U8 = NDArray[np.uint8]
I64 = NDArray[np.int64]
U64 = NDArray[np.uint64]

_K10 = np.arange(10, dtype=np.int64)
_SHIFTS = (7 * np.arange(10)).astype(np.uint64)


class WireError(ValueError):
    """Malformed protobuf wire data (the message says what and where)."""


@dataclass(frozen=True)
class Fields:
    """The fields found by :func:`walk_messages`, one entry per field occurrence.

    For wire type 0 ``value`` is the varint; for 1 and 5 the fixed-width value; for 2 ``value``
    is the payload start and ``end`` the payload end (byte offsets into the buffer).
    """

    msg: I64
    field: I64
    wire_type: I64
    value: U64
    end: I64
    pos: I64


def read_varints(buf: U8, pos: I64, end: I64) -> tuple[U64, I64]:
    """Read one varint at each ``pos`` (not reaching ``end``); return values and new positions.

    ``buf`` must be padded with at least 10 bytes after the last real byte.
    """
    if pos.size == 0:
        return np.zeros(0, dtype=np.uint64), pos
    first = buf[pos]
    if not (first & 0x80).any():
        if (pos >= end).any():
            raise WireError("truncated varint")
        return first.astype(np.uint64), pos + 1
    idx = pos[:, None] + _K10
    b = buf[idx]
    # Bytes at or past the message end count as continuation bytes, so that a varint that runs
    # off its message has no terminator and is reported as truncated.
    b = np.where(idx < end[:, None], b, np.uint8(0x80))
    term = (b & 0x80) == 0
    has = term.any(axis=1)
    if not has.all():
        raise WireError("truncated or over-long varint")
    length = term.argmax(axis=1)
    keep = _K10[None, :] <= length[:, None]
    parts = np.where(keep, (b & 0x7F).astype(np.uint64) << _SHIFTS[None, :], np.uint64(0))
    values = np.bitwise_or.reduce(parts, axis=1)
    return values, pos + length + 1


def _read_fixed(buf: U8, pos: I64, width: int) -> U64:
    idx = pos[:, None] + np.arange(width, dtype=np.int64)
    b = buf[idx].astype(np.uint64)
    shifts = (8 * np.arange(width)).astype(np.uint64)
    out: U64 = np.bitwise_or.reduce(b << shifts[None, :], axis=1)
    return out


def walk_messages(buf: U8, starts: I64, ends: I64) -> Fields:
    """Split every message ``buf[starts[i]:ends[i]]`` into its fields, all messages at once."""
    pos = starts.astype(np.int64, copy=True)
    active = np.flatnonzero(pos < ends)
    out_msg: list[I64] = []
    out_field: list[I64] = []
    out_wt: list[I64] = []
    out_val: list[U64] = []
    out_end: list[I64] = []
    out_pos: list[I64] = []
    while active.size:
        p = pos[active]
        e = ends[active]
        tag, q = read_varints(buf, p, e)
        field = (tag >> np.uint64(3)).astype(np.int64)
        wt = (tag & np.uint64(7)).astype(np.int64)
        if (field == 0).any():
            raise WireError("field number 0")
        bad = (wt != 0) & (wt != 1) & (wt != 2) & (wt != 5)
        if bad.any():
            raise WireError(f"unsupported wire type {int(wt[bad][0])}")
        value = np.zeros(active.size, dtype=np.uint64)
        fend = np.full(active.size, -1, dtype=np.int64)
        newpos = q.copy()
        m = wt == 0
        if m.any():
            v, nq = read_varints(buf, q[m], e[m])
            value[m] = v
            newpos[m] = nq
        m = wt == 2
        if m.any():
            ln, nq = read_varints(buf, q[m], e[m])
            if (ln > np.uint64(1 << 62)).any():
                raise WireError("length-delimited field longer than its message")
            pe = nq + ln.astype(np.int64)
            if (pe > e[m]).any():
                raise WireError("length-delimited field longer than its message")
            value[m] = nq.astype(np.uint64)
            fend[m] = pe
            newpos[m] = pe
        for width, code in ((8, 1), (4, 5)):
            m = wt == code
            if m.any():
                if (q[m] + width > e[m]).any():
                    raise WireError("truncated fixed-width field")
                value[m] = _read_fixed(buf, q[m], width)
                newpos[m] = q[m] + width
        out_msg.append(active)
        out_field.append(field)
        out_wt.append(wt)
        out_val.append(value)
        out_end.append(fend)
        out_pos.append(p)
        pos[active] = newpos
        active = active[newpos < e]
    if not out_msg:
        z = np.zeros(0, dtype=np.int64)
        return Fields(z, z, z, np.zeros(0, dtype=np.uint64), z, z)
    allpos = np.concatenate(out_pos)
    order = np.argsort(allpos, kind="stable")
    return Fields(
        msg=np.concatenate(out_msg)[order],
        field=np.concatenate(out_field)[order],
        wire_type=np.concatenate(out_wt)[order],
        value=np.concatenate(out_val)[order],
        end=np.concatenate(out_end)[order],
        pos=allpos[order],
    )


def decode_packed(buf: U8, starts: I64, ends: I64) -> tuple[U64, I64, I64]:
    """Decode the packed varints of each payload ``buf[starts[i]:ends[i]]``.

    Returns ``(values, counts, positions)``: all varints in payload order, how many each payload
    held, and the byte offset of each varint (to merge with unpacked occurrences in wire order).
    """
    lens = ends - starts
    total = int(lens.sum())
    if total == 0:
        return (
            np.zeros(0, dtype=np.uint64),
            np.zeros(starts.size, dtype=np.int64),
            np.zeros(0, dtype=np.int64),
        )
    seg_off = np.zeros(starts.size + 1, dtype=np.int64)
    np.cumsum(lens, out=seg_off[1:])
    idx = np.arange(total, dtype=np.int64) + np.repeat(starts - seg_off[:-1], lens)
    b = buf[idx]
    term = b < 0x80
    nonempty = lens > 0
    if not term[seg_off[1:][nonempty] - 1].all():
        raise WireError("truncated varint in packed field")
    term_pos = np.flatnonzero(term)
    vstart = np.empty(term_pos.size, dtype=np.int64)
    vstart[0] = 0
    vstart[1:] = term_pos[:-1] + 1
    if (term_pos - vstart >= 10).any():
        raise WireError("over-long varint in packed field")
    vid: I64 = np.cumsum(term, dtype=np.int64) - term
    shift = (np.arange(total, dtype=np.int64) - vstart[vid]) * 7
    parts = (b & 0x7F).astype(np.uint64) << shift.astype(np.uint64)
    values = np.add.reduceat(parts, vstart)
    counts = np.zeros(starts.size, dtype=np.int64)
    if nonempty.any():
        counts[nonempty] = np.add.reduceat(term.astype(np.int64), seg_off[:-1][nonempty])
    return values, counts, idx[vstart]


def repeated_varints(buf: U8, fields: Fields, field_no: int, n_msgs: int) -> tuple[U64, I64]:
    """Collect a repeated varint field (packed or not, in wire order) for every message.

    Returns ``(values, offsets)`` in CSR form: message i's values are
    ``values[offsets[i]:offsets[i+1]]``.
    """
    sel = fields.field == field_no
    wt = fields.wire_type[sel]
    if ((wt != 0) & (wt != 2)).any():
        raise WireError(f"field {field_no} has a wire type that a varint cannot have")
    msg = fields.msg[sel]
    packed = wt == 2
    pv, pcount, ppos = decode_packed(
        buf, fields.value[sel][packed].astype(np.int64), fields.end[sel][packed]
    )
    pmsg = np.repeat(msg[packed], pcount)
    unpacked = ~packed
    if unpacked.any():
        values = np.concatenate([pv, fields.value[sel][unpacked]])
        owners = np.concatenate([pmsg, msg[unpacked]])
        positions = np.concatenate([ppos, fields.pos[sel][unpacked]])
        order = np.argsort(positions, kind="stable")
        values = values[order]
        owners = owners[order]
    else:
        values = pv
        owners = pmsg
    counts = np.bincount(owners, minlength=n_msgs).astype(np.int64)
    offsets = np.zeros(n_msgs + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return values, offsets


# ---------------------------------------------------------------------------------------------
# Token space: every byte of a message made only of varint-based fields belongs to one varint.
# ---------------------------------------------------------------------------------------------


class NotTokenizable(Exception):
    """The fast path does not apply (a fixed-width field, or bytes that are not varints)."""


@dataclass(frozen=True)
class Tokens:
    """All varints of a buffer: ``ends[k]`` is the byte offset of token k's last byte.

    ``before[x]`` is the number of tokens that end before byte ``x``: the index of the token
    that starts at ``x``, found with one lookup instead of a binary search.
    """

    ends: I64
    values: U64
    before: NDArray[np.int32]

    def ends_at(self, x: I64) -> NDArray[np.bool_]:
        """Whether a token ends exactly at byte ``x - 1`` (so a field ending there is whole)."""
        return np.asarray(self.before[x] != self.before[x - 1])


def tokenize(buf: U8, nbytes: int) -> Tokens:
    """Decode ``buf[:nbytes]`` as a plain sequence of varints, all at once.

    Valid for a Sample message (tags, lengths, packed ids and values, and label messages are
    all varints); the caller checks the structure with :func:`walk_tokens`, which raises
    :class:`NotTokenizable` when it finds something else.
    """
    b = buf[:nbytes]
    if nbytes == 0:
        raise NotTokenizable("empty")
    if b[nbytes - 1] >= 0x80:
        raise NotTokenizable("buffer ends inside a varint")
    term = b < 0x80
    before = np.zeros(nbytes + 1, dtype=np.int32)
    np.cumsum(term, out=before[1:])
    ends = np.flatnonzero(term)
    values = b[ends].astype(np.uint64)
    values &= np.uint64(0x7F)
    lengths = np.diff(ends, prepend=-1)
    multi = np.flatnonzero(lengths > 1)
    if multi.size:
        lm = lengths[multi]
        if int(lm.max()) > 10:
            raise NotTokenizable("over-long varint")
        em = ends[multi]
        acc = values[multi] << ((lm - 1) * 7).astype(np.uint64)
        for k in range(1, int(lm.max())):
            sel = lm > k
            part = (b[em[sel] - k] & 0x7F).astype(np.uint64)
            acc[sel] |= part << ((lm[sel] - 1 - k) * 7).astype(np.uint64)
        values[multi] = acc
    return Tokens(ends, values, before)


@dataclass(frozen=True)
class TokenFields:
    """Fields found by :func:`walk_tokens`, in wire order; ``[lo, hi)`` is the value's tokens."""

    msg: I64
    field: I64
    wire_type: I64
    lo: I64
    hi: I64


def walk_tokens(tok: Tokens, first: I64, stop: I64, byte_end: I64) -> TokenFields:
    """Split messages (token ranges ``[first, stop)``) into fields, one field per round."""
    ends, values = tok.ends, tok.values
    cur = first.astype(np.int64, copy=True)
    active = np.flatnonzero(cur < stop)
    out: list[tuple[I64, I64, I64, I64, I64]] = []
    while active.size:
        c = cur[active]
        s = stop[active]
        if (c + 1 >= s).any():
            raise NotTokenizable("field without a value")
        tag = values[c]
        field = (tag >> np.uint64(3)).astype(np.int64)
        wt = (tag & np.uint64(7)).astype(np.int64)
        if ((wt != 0) & (wt != 2)).any() or (field == 0).any():
            raise NotTokenizable("fixed-width field")
        lo = c + 1
        hi = c + 2
        m2 = np.flatnonzero(wt == 2)
        if m2.size:
            length = values[c[m2] + 1].astype(np.int64)
            start_byte = ends[c[m2] + 1] + 1
            end_byte = start_byte + length
            if (end_byte > byte_end[active[m2]]).any() or (length < 0).any():
                raise NotTokenizable("length past the message end")
            nz = length > 0
            if not tok.ends_at(end_byte[nz]).all():
                raise NotTokenizable("payload that is not whole varints")
            last = tok.before[end_byte[nz]] - 1
            lo2 = c[m2] + 2
            hi2 = lo2.copy()
            hi2[nz] = last + 1
            lo[m2] = lo2
            hi[m2] = hi2
        out.append((active, field, wt, lo, hi))
        cur[active] = hi
        active = active[hi < s]
    if not out:
        z = np.zeros(0, dtype=np.int64)
        return TokenFields(z, z, z, z, z)
    lo_all = np.concatenate([o[3] for o in out])
    order = np.argsort(lo_all, kind="stable")
    return TokenFields(
        msg=np.concatenate([o[0] for o in out])[order],
        field=np.concatenate([o[1] for o in out])[order],
        wire_type=np.concatenate([o[2] for o in out])[order],
        lo=lo_all[order],
        hi=np.concatenate([o[4] for o in out])[order],
    )


def token_field_values(tok: Tokens, f: TokenFields, field_no: int, n_msgs: int
                       ) -> tuple[U64, I64]:
    """A repeated varint field (packed or not) of every message, CSR ``(values, offsets)``."""
    sel = np.flatnonzero(f.field == field_no)
    lo, hi, msg = f.lo[sel], f.hi[sel], f.msg[sel]
    counts_per = hi - lo
    total = int(counts_per.sum())
    ntok = tok.values.size
    if total == 0:
        vals = np.zeros(0, dtype=np.uint64)
    elif total * 4 > ntok:
        # Most tokens are wanted: a mask over all tokens beats an index expansion. The ranges
        # are disjoint, so +1 at each start and -1 at each end, summed up, marks them.
        marks = np.bincount(lo, minlength=ntok + 1) - np.bincount(hi, minlength=ntok + 1)
        vals = tok.values[np.cumsum(marks[:ntok]) > 0]
    else:
        starts = np.repeat(lo - np.concatenate(([0], np.cumsum(counts_per)[:-1])), counts_per)
        vals = tok.values[np.arange(total, dtype=np.int64) + starts]
    counts = np.bincount(msg, weights=counts_per, minlength=n_msgs).astype(np.int64)
    offsets = np.zeros(n_msgs + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return vals, offsets


def encode_varint(value: int) -> bytes:
    """A protobuf varint (negative numbers as their 64-bit two's complement, as int64 is)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
