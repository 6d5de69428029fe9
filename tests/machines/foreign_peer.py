"""A foreign Zenoh peer (eclipse-zenoh from PyPI) that tries to get into a quiver cluster.

Usage: foreign_peer.py SPEC_JSON. SPEC lists attempts: {name, endpoint, ca, cert, key} (the TLS
files optional; with `cert` the client presents it). For each it opens a client session to the endpoint and, if that works, asks
every daemon for its info and (unless `probe_only`) calls a daemon's prepare, listens on every
quiver key and puts garbage on them. Prints one JSON object: name -> what happened.
"""
import json
import sys
import time

import zenoh


def attempt(a):
    conf = zenoh.Config()
    conf.insert_json5("mode", '"client"')
    conf.insert_json5("connect/endpoints", json.dumps([a["endpoint"]]))
    conf.insert_json5("scouting/multicast/enabled", "false")
    conf.insert_json5("connect/timeout_ms", "3000")
    for key, field in [
        ("root_ca_certificate", "ca"),
        ("connect_certificate", "cert"),
        ("connect_private_key", "key"),
    ]:
        if a.get(field):
            conf.insert_json5("transport/link/tls/" + key, json.dumps(a[field]))
    conf.insert_json5("transport/link/tls/verify_name_on_connect", "false")
    if a.get("cert"):
        # Present the certificate (Zenoh sends one only with mTLS on).
        conf.insert_json5("transport/link/tls/enable_mtls", "true")
    out = {"opened": False}
    try:
        session = zenoh.open(conf)
    except Exception as e:  # refused: that is the point
        out["error"] = str(e).splitlines()[0][:300]
        return out
    out["opened"] = True
    infos = 0
    for reply in session.get("quiver/daemon/*/info", timeout=2.0):
        if reply.ok is not None:
            infos += 1
    out["daemon_infos"] = infos
    if a.get("probe_only"):
        session.close()
        return out
    prepared = 0
    for reply in session.get("quiver/daemon/*/prepare", payload=b"{}", timeout=2.0):
        prepared += 1
    out["prepare_replies"] = prepared
    seen = []
    sub = session.declare_subscriber("quiver/**", lambda s: seen.append(str(s.key_expr)))
    for _ in range(20):
        session.put("quiver/**", b"garbage")
        time.sleep(0.05)
    time.sleep(0.5)
    sub.undeclare()
    out["samples_seen"] = len(seen)
    session.close()
    return out


def main():
    spec = json.loads(sys.argv[1])
    print(json.dumps({a["name"]: attempt(a) for a in spec}))


if __name__ == "__main__":
    main()
