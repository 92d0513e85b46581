"""Downloads a package's source archive from the pip index, verified against the index's hash.

usage: fetch_sdist.py NAME VERSION DEST_DIR
Uses PIP_INDEX_URL (else https://pypi.org/simple), as pip does. Exits non-zero on any mismatch.
"""
import hashlib, os, re, sys, urllib.parse, urllib.request

name, version, dest = sys.argv[1], sys.argv[2], sys.argv[3]
index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
page = f"{index}/{name}/"
html = urllib.request.urlopen(page, timeout=120).read().decode()
archive = f"{name.replace('-', '_')}-{version}.tar.gz"
links = [h for h in re.findall(r'href="([^"]+)"', html) if archive in h]
if not links:
    sys.exit(f"fetch_sdist: {archive} is not listed at {page}")
url, _, fragment = urllib.parse.urljoin(page, links[0]).partition("#")
algorithm, _, digest = fragment.partition("=")
if not digest:
    sys.exit(f"fetch_sdist: the index gives no hash for {archive}; refusing an unverified download")
data = urllib.request.urlopen(url, timeout=900).read()
if hashlib.new(algorithm, data).hexdigest() != digest:
    sys.exit(f"fetch_sdist: {archive} does not match the index's {algorithm}")
with open(os.path.join(dest, archive), "wb") as f:
    f.write(data)
print(f"{archive}: {len(data)} bytes, {algorithm} verified", file=sys.stderr)
