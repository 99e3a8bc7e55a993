// Package libvirt is the winbake-libvirt builder: it installs Windows from
// the ISO in a libvirt domain, on a local or remote hypervisor (qemu:///,
// qemu+ssh, qemu+tcp, qemu+tls), through go-libvirt's RPC client and
// libvirtxml. Media and the system disk are storage volumes it uploads,
// creates and deletes again; the disk is downloaded (and checked) into the
// output directory unless keep_in_pool is set. The build's steps are listed
// in Builder.Steps; what libvirt does is behind the Driver interface.
package libvirt
