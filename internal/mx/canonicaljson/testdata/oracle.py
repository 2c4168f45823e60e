"""Canonical JSON as Synapse computes it, for the Go tests to compare with.

Reads a JSON list of base64-encoded inputs on stdin; for each, prints one
line: "OK <base64 of the canonical JSON>" or "ERR <reason>". The checks are
Synapse's: json.loads with NaN/Infinity refused (synapse/util/json.py),
validate_canonicaljson (synapse/events/utils.py: no floats, integers in
[-(2**53)+1, 2**53-1]), then python-canonicaljson's encode_canonical_json.
"""
import base64
import json
import sys

import canonicaljson

MAX = 2**53 - 1


def reject_constant(name):
    raise ValueError("invalid constant %s" % name)


def validate(v):
    if type(v) is int:
        if not -MAX <= v <= MAX:
            raise ValueError("int out of range")
    elif isinstance(v, float):
        raise ValueError("float")
    elif isinstance(v, dict):
        for x in v.values():
            validate(x)
    elif isinstance(v, list):
        for x in v:
            validate(x)


def main():
    decoder = json.JSONDecoder(parse_constant=reject_constant)
    for item in json.load(sys.stdin):
        raw = base64.b64decode(item)
        try:
            value = decoder.decode(raw.decode("utf-8"))
            validate(value)
            out = canonicaljson.encode_canonical_json(value)
        except (ValueError, UnicodeError, RecursionError) as e:
            print("ERR", type(e).__name__)
            continue
        print("OK", base64.b64encode(out).decode("ascii"))


main()
