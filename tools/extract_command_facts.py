#!/usr/bin/env python3
"""Extracts the facts of Redis 7.0.15's command specs into data/commands.json.

Facts only (arity, flags, key specs, ACL categories, argument structure,
group, since); prose (summaries, complexity, history text, notes) stays out.
Commands newer than 7.0 that clients send come from data/commands-extra.json.

usage: tools/extract_command_facts.py [../shared/reference/commands] > data/commands.json
"""
import json, os, sys

KEEP = ["group", "since", "arity", "container", "command_flags", "acl_categories",
        "command_tips", "doc_flags", "deprecated_since"]
ARG_KEEP = ["name", "type", "token", "optional", "multiple", "multiple_token",
            "key_spec_index", "since", "value", "display"]


def arg_facts(a):
    out = {k: a[k] for k in ARG_KEEP if k in a}
    if "flags" in a:
        out["flags"] = a["flags"]
    if "arguments" in a:
        out["arguments"] = [arg_facts(x) for x in a["arguments"]]
    return out


def spec_facts(ks):
    return {k: v for k, v in ks.items() if k != "notes"}


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "..", "shared", "reference", "commands")
    out = {}
    for fn in sorted(os.listdir(src)):
        if not fn.endswith(".json"):
            continue
        for name, spec in json.load(open(os.path.join(src, fn))).items():
            facts = {k: spec[k] for k in KEEP if k in spec}
            if "key_specs" in spec:
                facts["key_specs"] = [spec_facts(k) for k in spec["key_specs"]]
            if "arguments" in spec:
                facts["arguments"] = [arg_facts(a) for a in spec["arguments"]]
            full = (spec["container"] + "|" + name if "container" in spec else name).lower()
            out[full] = facts
    json.dump(out, sys.stdout, indent=0, sort_keys=True, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
