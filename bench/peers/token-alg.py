#!/usr/bin/env python3
"""Reads a token response on stdin; prints the access token's JWS alg ("opaque" when it is not
a JWT), or fails when the response holds no access_token."""
import base64
import json
import sys

body = json.load(sys.stdin)
token = body.get("access_token")
if not isinstance(token, str) or not token:
    sys.exit(f"no access_token in the response: {sorted(body)}")
parts = token.split(".")
if len(parts) != 3:
    print("opaque")
    sys.exit(0)
header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
print(header["alg"])
