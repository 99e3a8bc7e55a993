// Package qemu is the winbake-qemu builder: it installs Windows from the
// ISO (or starts from a source image) in a local QEMU process, with the
// generated autounattend.xml, OVMF and swtpm for UEFI, Secure Boot and TPM,
// and writes the disk, firmware state and manifest into output_directory.
// The steps live in builder/common and internal/qemuvm; Builder.Steps
// lists them in order.
package qemu
