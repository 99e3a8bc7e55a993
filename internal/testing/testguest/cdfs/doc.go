// Package cdfs reads ISO 9660 media the way Windows' CD-ROM file system
// driver (CDFS) reads them, so that winbake's stand-in Windows guest sees
// on a CD exactly what Windows sees: no more (Linux's isofs is more
// forgiving) and no less.
//
// The model follows the CDFS source Microsoft publishes in
// Windows-driver-samples (filesys/cdfs); each rule cites the function it
// comes from:
//
//   - Mounting (fsctrl.c CdMountVolume, CdFindPrimaryVd,
//     CdFindActiveVolDescriptor): the volume descriptors from sector 16 on;
//     a primary volume descriptor is required, and a supplementary one with
//     a Joliet escape sequence ("%/@", "%/C", "%/E", cddata.c
//     CdJolietEscape) is preferred over it: then every name (volume label,
//     path table, directory records) is UCS-2 big-endian and the Joliet
//     tree is the only one read. The label is the active descriptor's
//     volume identifier without trailing blanks and NULs. Logical blocks
//     other than 2048 bytes are refused (strucsup.c
//     CdUpdateVcbFromVolDescriptor).
//   - Directories (create.c CdCommonCreate, pathsup.c CdFindPathEntry):
//     every directory of a path is found in the type L path table (the
//     location and size of the active descriptor, strucsup.c
//     CdUpdateVcbFromVolDescriptor and cd.h CdRvdPtLoc/CdRvdPtSz), among
//     the entries whose parent is the directory's ordinal; only the root
//     comes from the descriptor's root directory record. Directory records
//     are scanned only for the last component, and only for files
//     (dirsup.c CdFindFile skips directories: "All directories would
//     already have been found"). A volume whose path table is empty, as
//     github.com/kdomanski/iso9660 writes it, therefore shows the files of
//     its root and nothing below: every deeper lookup fails with
//     STATUS_OBJECT_PATH_NOT_FOUND, as on Windows.
//   - Names (pathsup.c CdUpdatePathEntryName, dirsup.c CdUpdateDirentName,
//     namesup.c CdConvertNameToCdName, CdIsNameInExpression, CdUpcaseName):
//     ISO names are converted from the OEM code page (RtlOemToUnicodeN;
//     437 on US English Windows), Joliet names from big-endian UCS-2; the
//     version (";1") is split off and a trailing dot dropped; names are
//     compared upper-cased (Win32 opens are case-insensitive), and the
//     version only when the caller gives one.
//   - Directory records (dirsup.c CdLookupNextDirent,
//     CdUpdateDirentFromRawDirent; cachesup.c CdCreateInternalStream):
//     records do not span sectors and a zero length byte moves to the next
//     sector; a directory's size is that of its own "." record; associated
//     files are skipped; a file recorded in several extents (multi-extent
//     flag) is their concatenation (strucsup.c
//     CdInitializeFcbFromFileContext).
//
// Not modelled, and refused with an error that says so: High Sierra
// volumes, interleaved files, and CDFS's generated 8.3 short names for
// long Joliet names (namesup.c CdShortNameDirentOffset, dirsup.c
// CdFindFileByShortName). CD-XA sector forms are read as plain data.
//
// UDF is not read here: Windows mounts a disc that carries UDF with UDFS,
// which is tried first (CDFS mounts last, fsctrl.c CdMountVolume: "we're
// always last in the mount order"). Volume.UDF reports the UDF volume
// recognition sequence so that callers can say so.
package cdfs
