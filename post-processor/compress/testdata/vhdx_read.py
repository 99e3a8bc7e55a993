"""Reads a VHDX image with libvhdi (Debian package python3-libvhdi), a
reader independent of QEMU, and prints its media size, then the SHA-256 of
the guest bytes in each range given as OFFSET:LENGTH, one per line."""
import hashlib
import sys

import pyvhdi

image = pyvhdi.file()
image.open(sys.argv[1])
print(image.get_media_size())
for arg in sys.argv[2:]:
    offset, length = (int(v) for v in arg.split(":"))
    h = hashlib.sha256()
    while length > 0:
        n = min(length, 1 << 20)
        data = image.read_buffer_at_offset(n, offset)
        if len(data) != n:
            sys.exit(f"read {len(data)} of {n} bytes at {offset}")
        h.update(data)
        offset += n
        length -= n
    print(h.hexdigest())
image.close()
