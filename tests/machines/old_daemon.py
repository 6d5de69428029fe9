"""A daemon of another quiver version, played by eclipse-zenoh from PyPI: a Zenoh router on
the given endpoint that answers `quiver/daemon/NAME/info` like `quiver daemon` does, but with
version 0.0.1 and ABI 1, and holds the daemon's liveliness token. Prints `ready`, then serves
until stdin closes.

Usage: old_daemon.py ENDPOINT NAME
"""
import json
import sys

import zenoh


def main():
    endpoint, name = sys.argv[1], sys.argv[2]
    conf = zenoh.Config()
    conf.insert_json5("mode", '"router"')
    conf.insert_json5("listen/endpoints", json.dumps([endpoint]))
    conf.insert_json5("scouting/multicast/enabled", "false")
    session = zenoh.open(conf)
    info = {
        "name": name,
        "labels": ["gpu"],
        "version": "0.0.1",
        "abi": 1,
        "listen": [endpoint],
        "host": "127.0.0.1",
        "no_fetch": False,
        "tls": False,
        "runs": [],
        "cpus": 1,
        "load": 0.0,
        "cpu_percent": None,
        "mem_total_mb": 1,
        "mem_available_mb": 1,
    }
    session.declare_queryable(
        f"quiver/daemon/{name}/info",
        lambda q: q.reply(q.key_expr, json.dumps(info).encode()),
    )
    token = session.liveliness().declare_token(f"quiver/alive/daemon/{name}")
    print("ready", flush=True)
    sys.stdin.read()
    token.undeclare()
    session.close()


if __name__ == "__main__":
    main()
