// Package glance is the winbake-glance post-processor: it logs in to
// Keystone with gophercloud, creates the image in Glance with properties
// from the build's manifest (hardware, firmware, OS, updates; validated as
// Nova reads them), streams the file with its hashes, checks what Glance
// stored, and retires older images of the same family as configured.
// Whatever fails after the image was created deletes it again.
package glance
