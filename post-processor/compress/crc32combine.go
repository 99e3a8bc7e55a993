package compress

// CRC-32 (IEEE) of a concatenation from the CRCs of its parts, as zlib's
// crc32_combine does: the gzip writer hashes chunks on all cores and joins
// the results in order, and a run of zero chunks costs one multiplication
// per chunk instead of hashing gigabytes of zeros.

const crcPoly = 0xedb88320 // reflected IEEE polynomial

// crcMulModP multiplies a and b modulo the CRC polynomial (reflected bit
// order, x^0 in the top bit).
func crcMulModP(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
		}
		if b&1 != 0 {
			b = b>>1 ^ crcPoly
		} else {
			b >>= 1
		}
	}
	return p
}

// crcShift returns x^(8n) modulo the CRC polynomial: the operator that
// appends n zero bytes' worth of shift to a CRC.
func crcShift(n int64) uint32 {
	p := uint32(1) << 31  // x^0
	sq := uint32(1) << 23 // x^8, one byte
	for ; n > 0; n >>= 1 {
		if n&1 != 0 {
			p = crcMulModP(sq, p)
		}
		sq = crcMulModP(sq, sq)
	}
	return p
}

// crcCombine returns the CRC of A||B from crcA, crcB and len(B), given the
// shift operator crcShift(len(B)).
func crcCombine(crcA, crcB uint32, shiftB uint32) uint32 {
	return crcMulModP(shiftB, crcA) ^ crcB
}
