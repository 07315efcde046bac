# GLib oracle for the gvariant tests: reads a JSON list of jobs on stdin and
# answers each with what GLib (via python3-gi) does. Values arrive as a tagged
# tree (see toTagged in glib.ts) and are built with the g_variant_new_* calls,
# so order, duplicates and Just(Nothing) survive.
import json
import struct
import sys

from gi.repository import GLib


def type_end(s, i):
    while s[i] in "am":
        i += 1
    if s[i] in "({":
        depth = 0
        while True:
            if s[i] in "({":
                depth += 1
            elif s[i] in ")}":
                depth -= 1
            i += 1
            if depth == 0:
                return i
    return i + 1


def split_types(s):
    # pygobject's GVariantType.next() is unusable, so tuple members are split here.
    out, i = [], 0
    while i < len(s):
        j = type_end(s, i)
        out.append(s[i:j])
        i = j
    return out


def build(t, x):
    vt = GLib.VariantType.new(t)
    c = t[0]
    if c == "b":
        return GLib.Variant.new_boolean(x)
    if c == "y":
        return GLib.Variant.new_byte(x)
    if c == "n":
        return GLib.Variant.new_int16(x)
    if c == "q":
        return GLib.Variant.new_uint16(x)
    if c == "i":
        return GLib.Variant.new_int32(x)
    if c == "u":
        return GLib.Variant.new_uint32(x)
    if c == "h":
        return GLib.Variant.new_handle(x)
    if c == "x":
        return GLib.Variant.new_int64(int(x))
    if c == "t":
        return GLib.Variant.new_uint64(int(x))
    if c == "d":
        return GLib.Variant.new_double(struct.unpack("<d", bytes.fromhex(x))[0])
    if c == "s":
        return GLib.Variant.new_string(x)
    if c == "o":
        return GLib.Variant.new_object_path(x)
    if c == "g":
        return GLib.Variant.new_signature(x)
    if c == "v":
        return GLib.Variant.new_variant(build(x[0], x[1]))
    if c == "m":
        el = vt.element()
        return GLib.Variant.new_maybe(el, None if x is None else build(el.dup_string(), x[0]))
    if c == "a":
        el = vt.element()
        return GLib.Variant.new_array(el, [build(el.dup_string(), i) for i in x])
    if c == "(":
        members = split_types(t[1:-1])
        return GLib.Variant.new_tuple(*[build(mt, i) for mt, i in zip(members, x)])
    if c == "{":
        return GLib.Variant.new_dict_entry(build(vt.key().dup_string(), x[0]), build(vt.value().dup_string(), x[1]))
    raise ValueError(t)


def describe(v):
    return {
        "type": v.get_type_string(),
        "hex": bytes(v.get_data_as_bytes().get_data()).hex(),
        "p1": v.print_(True),
        "p0": v.print_(False),
    }


def run(job):
    op = job["op"]
    try:
        if op == "build":
            return describe(build(job["type"], job["value"]))
        if op == "frombytes":
            v = GLib.Variant.new_from_bytes(GLib.VariantType.new(job["type"]), GLib.Bytes.new(bytes.fromhex(job["hex"])), False)
            return {"normal": v.is_normal_form()}
        if op == "normalform":
            v = GLib.Variant.new_from_bytes(GLib.VariantType.new(job["type"]), GLib.Bytes.new(bytes.fromhex(job["hex"])), False)
            return {"hex": bytes(v.get_normal_form().get_data_as_bytes().get_data()).hex()}
        if op == "parse":
            t = None if job.get("type") is None else GLib.VariantType.new(job["type"])
            return describe(GLib.Variant.parse(t, job["text"], None, None))
    except GLib.Error as e:
        return {"error": e.message}
    raise ValueError(op)


print(json.dumps([run(j) for j in json.load(sys.stdin)]))
