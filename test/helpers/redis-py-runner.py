"""redis-py (Debian's python3-redis) against a RESP listener, for test/integration/redis-clients.test.ts.

Reads one JSON object on stdin: {"port": N, "steps": [[arg, ...], ...], "name": "..."} and prints
one JSON object: {"steps": [...], "api": {...}}.

- "steps": each command sent with execute_command on a client whose response callbacks are
  cleared, so the reply is what redis-py's parser decoded (str, int, None, lists), or
  {"error": "...", "type": "ResponseError"} for an error reply (redis-py's message and class).
  That is the protocol as redis-py reads it.
- "api": the same client library used the way applications use it (set/get, pipelines, info()
  parsed to a dict, client_list() parsed from CLIENT LIST, config_get, time), each value as
  redis-py returns it, so the test can check that redis-py's own parsing of jincache's replies
  gives what it gives for Redis.
"""
import json
import sys

import redis


def plain(value):
    """A reply as JSON: bytes as text, tuples and sets as lists, dicts as [key, value, ...]."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            out += [plain(k), plain(v)]
        return out
    return value


def main():
    job = json.load(sys.stdin)
    port = job["port"]
    name = job["name"]

    raw = redis.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=10)
    raw.response_callbacks = {}
    steps = []
    for args in job["steps"]:
        try:
            steps.append({"ok": plain(raw.execute_command(*args))})
        except redis.exceptions.ResponseError as e:
            steps.append({"error": str(e), "type": type(e).__name__})

    r = redis.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=10, client_name=name + "-api")
    api = {}
    api["set"] = r.set(name + ":api", "v", ex=60)
    api["get"] = r.get(name + ":api")
    api["ttl"] = r.ttl(name + ":api")
    api["mget"] = r.mget([name + ":api", name + ":none"])
    pipe = r.pipeline(transaction=False)
    for i in range(50):
        pipe.set("%s:p%d" % (name, i), str(i))
        pipe.get("%s:p%d" % (name, i))
    api["pipeline"] = pipe.execute()
    api["delete"] = r.delete(*["%s:p%d" % (name, i) for i in range(50)])
    info = r.info()
    api["info_keys"] = sorted(k for k in ("redis_version", "connected_clients", "used_memory", "uptime_in_seconds", "loading") if k in info)
    api["info_version"] = str(info.get("redis_version"))
    api["info_used_memory"] = info.get("used_memory")
    api["info_keyspace"] = r.info("keyspace")
    # both connections: the steps' (its last command) and this one
    mine = [c for c in r.client_list() if c.get("name") in (name, name + "-api")]
    api["client_list_mine"] = sorted(({k: c.get(k) for k in ("name", "db", "flags", "cmd", "resp")} for c in mine), key=lambda c: c["name"])
    api["client_id"] = r.client_id()
    api["client_getname"] = r.client_getname()
    api["config_get"] = r.config_get("maxmemory*")
    api["time"] = list(r.time())
    api["ping"] = r.ping()
    api["echo"] = r.echo("hi")
    print(json.dumps({"steps": steps, "api": api}))


if __name__ == "__main__":
    main()
