// Package importrules checks, in its test, how winbake's packages may
// depend on each other: a component (a builder, the provisioner or a
// post-processor, with its own subpackages) reaches another component
// only through the shared leaf packages under internal/ (internal/image,
// internal/guestcontract, ...), never by importing it, so that each
// component can change, or move to a plugin of its own, without the
// others; and the plugin binary carries none of the test infrastructure.
package importrules
