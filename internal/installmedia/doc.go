// Package installmedia reads, on the build host and in pure Go, which
// Windows images a Windows install ISO holds, so that the builder can
// refuse to start a VM for an image_name that is not on the ISO, pick the
// virtio-win driver folder for the image (viostor/2k22/amd64, ...) and set
// Glance's os_version.
//
// # What is read
//
// Windows install media keep their images in sources/install.wim or, for
// media made by the Media Creation Tool and some Insider builds,
// sources/install.esd. Both are WIM files: a 208-byte header ("MSWIM"
// magic, image count, resource headers) and, among the resources, an XML
// document describing each image: <NAME> (what unattend's /IMAGE/NAME and
// DISM's /Name match), <DESCRIPTION>, <FLAGS> and, under <WINDOWS>, <ARCH>,
// <EDITIONID>, <INSTALLATIONTYPE> ("Client", "Server", "Server Core"),
// <PRODUCTTYPE>, <LANGUAGES> and <VERSION> (major, minor, build, service
// pack build). ESD files share the format with LZMS-compressed, "solid"
// file resources. Windows and wimlib store the XML resource uncompressed,
// as UTF-16LE with a byte order mark, in WIM and ESD files alike; a
// compressed XML resource is reported as an error, as are split WIMs
// (install.swm), which are not supported.
//
// ReadWIMImages reads the header and the XML resource and nothing else: an
// install.wim of several GiB costs two small reads. ReadISO finds the file
// on the ISO and does the same; the ISO itself is read only at its volume
// descriptors and the few directories on the path, a few kilobytes in all.
//
// # File systems
//
// Microsoft masters its ISOs (Windows Server 2016 to 2025 evaluation media,
// Windows 10 and 11) with oscdimg as UDF (1.02, sometimes 2.50) with a
// minimal ISO 9660 "bridge" whose only file is a README saying the disc
// needs UDF, and install.wim is often larger than 4 GiB, beyond what one
// ISO 9660 extent can hold. So ReadISO reads the UDF file system first,
// with the small read-only UDF reader of this package (udf.go): volume
// recognition sequence, anchor at sector 256 (or at the end of the image),
// main or reserve volume descriptor sequence, type 1 and metadata (UDF
// 2.50+) partition maps, file set descriptor, file entries and extended
// file entries with short, long or embedded allocation descriptors and
// allocation extent descriptor chains, and file identifier descriptors
// with OSTA CS0 names. No kept Go library reads UDF, hence this reader.
// It supports 2048-byte blocks, as ISO images have, and refuses the
// sparable and virtual partitions of rewritable and write-once discs.
//
// When there is no UDF file system, or the file is not on it, ReadISO reads
// the ISO 9660 file system with github.com/kdomanski/iso9660, using Rock
// Ridge names where recorded (as xorriso writes them) and the ISO 9660
// names otherwise; files recorded in several extents (4 GiB and more) are
// joined. Joliet names are not read; the ISO 9660 names of install.wim and
// install.esd are the same letters. Remastered media and the tests use
// this path.
//
// Paths are matched case-insensitively: sources/install.wim first, then
// sources/install.esd. When neither is found, the error says which
// file systems were searched and what their top level and sources
// directory hold (and names install.swm when the image is split).
//
// # Image names
//
// FindImage matches an image_name exactly and then, if that finds nothing,
// case-insensitively when exactly one image matches that way. Microsoft's
// documentation of /IMAGE/NAME does not say whether Setup ignores case, so
// callers should write the returned image's Name, as recorded in the WIM,
// into the answer file. Its error lists the available names, quoted and
// in index order.
//
// # Virtio-win and Glance
//
// Image.VirtioDriverFolder maps the Windows build to virtio-win's folders
// (2k16, 2k19, 2k22, 2k25 for servers; w10, w11 for clients), the way
// cloudbase's Windows image tools do, Image.VirtioArchFolder maps the
// architecture (amd64, ARM64, x86), and Image.OSVersion gives Glance's
// os_version ("2022", "11", ...) from the same build table.
package installmedia
