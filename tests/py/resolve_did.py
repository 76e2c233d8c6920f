"""Resolves DIDs with the Python atproto SDK (atproto_identity) from a PLC directory.

Usage: python tests/py/resolve_did.py PLC_URL DID...
Prints one JSON line per DID: {"did", "doc", "atproto"} where doc is the raw DID document
(null on 404) and atproto is resolve_atproto_data's {did, signing_key, handle, pds}, or
{"did", "error"} when resolution raises.
"""

import json
import sys

from atproto_identity.did.resolvers.plc_resolver import DidPlcResolver


def main() -> int:
    if len(sys.argv) < 3:
        print("usage: resolve_did.py PLC_URL DID...", file=sys.stderr)
        return 2
    plc_url, dids = sys.argv[1], sys.argv[2:]
    resolver = DidPlcResolver(plc_url=plc_url, timeout=10)
    for did in dids:
        try:
            doc = resolver.resolve_without_validation(did)
            atproto = None
            if doc is not None:
                data = resolver.resolve_atproto_data(did)
                atproto = {
                    "did": data.did,
                    "signing_key": data.signing_key,
                    "handle": data.handle,
                    "pds": data.pds,
                }
            print(json.dumps({"did": did, "doc": doc, "atproto": atproto}))
        except Exception as err:  # noqa: BLE001 - reported to the test as data
            print(json.dumps({"did": did, "error": f"{type(err).__name__}: {err}"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
