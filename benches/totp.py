"""The current TOTP code of an otpauth URI (RFC 6238, SHA-1, 6 digits, 30 s),
for the benches that sign in as a demo account: benches/totp.py URI"""
import base64, hmac, hashlib, struct, sys, time, urllib.parse
q = urllib.parse.parse_qs(urllib.parse.urlparse(sys.argv[1]).query)
secret = q["secret"][0]
key = base64.b32decode(secret + "=" * (-len(secret) % 8))
step = int(time.time()) // 30
d = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
o = d[-1] & 15
print("%06d" % ((struct.unpack(">I", d[o:o + 4])[0] & 0x7FFFFFFF) % 1000000))
