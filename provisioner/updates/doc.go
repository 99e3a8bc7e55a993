// Package updates is the winbake-updates provisioner: it installs offline
// servicing stack, cumulative and other .msu/.cab packages in the order
// Windows needs, delivers them over HTTP from a package server on the host
// to winbake-agent in the guest (verified by SHA-256), installs them with
// DISM, restarts the guest as often as they require, and records
// what it installed in the guest (internal/guestcontract's updates record)
// for the builder's manifest and winbake-verify.
package updates
