// Package e2e drives a real Packer binary with the freshly built winbake
// plugin installed into a throwaway plugin directory.
//
// The tests are behind the "e2e" build tag and read two variables that
// `make e2e` sets: WINBAKE_PACKER (the packer binary) and
// WINBAKE_PLUGIN_BINARY (the plugin binary to install).
package e2e
