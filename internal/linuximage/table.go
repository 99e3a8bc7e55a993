package linuximage

import (
	"encoding/binary"
	"fmt"
)

// parseTable reads the partition table from the disk's first sectors: an
// MBR (UEFI spec 2.10 §5.2.1: four 16-byte entries at 446, signature 0x55AA
// at 510), or a GPT behind its protective MBR (§5.3: the header at LBA 1,
// the entry array where the header says). None: no partitions.
func parseTable(head []byte, diskSize int64) ([]Partition, error) {
	if len(head) < sectorSize || head[510] != 0x55 || head[511] != 0xAA {
		return nil, nil
	}
	var mbr []Partition
	gpt := false
	for i := 0; i < 4; i++ {
		e := head[446+16*i : 446+16*(i+1)]
		typ := e[4]
		start := int64(binary.LittleEndian.Uint32(e[8:])) * sectorSize
		size := int64(binary.LittleEndian.Uint32(e[12:])) * sectorSize
		switch typ {
		case 0:
			continue
		case 0xEE:
			gpt = true
		case 0x05, 0x0F, 0x85:
			// Extended partitions hold logical ones in a chain this reader
			// does not follow; their file systems are not read.
			continue
		}
		mbr = append(mbr, Partition{Number: i + 1, Start: start, Size: size, Type: fmt.Sprintf("0x%02x", typ)})
	}
	if !gpt {
		// A FAT or NTFS boot sector also ends in 0x55AA: entries that do
		// not fit the disk are not a partition table.
		for _, p := range mbr {
			if p.Start == 0 || p.Start+p.Size > diskSize {
				return nil, nil
			}
		}
		return mbr, nil
	}
	if len(head) < 2*sectorSize || string(head[sectorSize:sectorSize+8]) != "EFI PART" {
		return nil, fmt.Errorf("the protective MBR announces a GPT, but LBA 1 holds no GPT header")
	}
	h := head[sectorSize:]
	entriesLBA := int64(binary.LittleEndian.Uint64(h[72:]))
	count := int64(binary.LittleEndian.Uint32(h[80:]))
	entrySize := int64(binary.LittleEndian.Uint32(h[84:]))
	if entrySize < 128 {
		return nil, fmt.Errorf("GPT entry size %d is below 128", entrySize)
	}
	var parts []Partition
	for i := int64(0); i < count; i++ {
		off := entriesLBA*sectorSize + i*entrySize
		if off+entrySize > int64(len(head)) {
			if i == 0 {
				return nil, fmt.Errorf("the GPT entries start at LBA %d, beyond the first %d sectors this reader takes", entriesLBA, len(head)/sectorSize)
			}
			break
		}
		e := head[off : off+entrySize]
		if allZero(e[:16]) {
			continue
		}
		first := int64(binary.LittleEndian.Uint64(e[32:]))
		last := int64(binary.LittleEndian.Uint64(e[40:]))
		parts = append(parts, Partition{
			Number: int(i) + 1, Start: first * sectorSize, Size: (last - first + 1) * sectorSize, Type: guid(e[:16]),
		})
	}
	return parts, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// guid formats a GUID stored in the GPT's mixed-endian layout.
func guid(b []byte) string {
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X",
		binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint16(b[4:]), binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16])
}
