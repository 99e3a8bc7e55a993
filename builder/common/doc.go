// Package common holds what winbake-qemu and winbake-libvirt share and no
// other component uses: the answer-file and media configuration
// (UnattendConfig, MediaConfig), the source-image configuration, and the
// builders' steps, one per file, each Cleanup undoing what its Run did:
// install image and virtio-win checks, answer media, disk, firmware and TPM
// state, boot command, serial console watch, host address export, shutdown
// and the manifest fields both builders write. Guest-side scripts are
// embedded from guest/. The QEMU VM runtime the builders drive (Driver,
// VMConfig, the VM steps) is internal/qemuvm.
package common
