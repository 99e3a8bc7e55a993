// Package windowssys is agent.System on a real Windows: the registry through
// golang.org/x/sys/windows/registry, programs through os/exec, the boot time
// from NtQuerySystemInformation, restarts through shutdown.exe and files
// through package os. Only New and the Windows implementation are built for
// Windows; the helpers in the untagged files are plain Go so they are
// tested on any host.
package windowssys
