// Package common holds what winbake-qemu and winbake-libvirt share: the
// answer-file and media configuration (UnattendConfig, MediaConfig), the
// source-image configuration, the host probe and firmware lookup, the QEMU
// argument model and Driver used by winbake-qemu (and, until it moves to a
// package of its own, by winbake-sysprep and winbake-verify), and the VM
// steps, one per file, each Cleanup undoing what its Run did: media, disk,
// TPM, port forward, boot command, WinRM connection (StepConnectWinRM),
// shutdown, firmware state and the manifest fields both builders write.
// Guest-side scripts are embedded from guest/.
package common
