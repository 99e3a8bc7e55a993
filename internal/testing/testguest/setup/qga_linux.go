package setup

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/qga"
)

// virtioPort finds the virtio-serial port with the given name
// (/sys/class/virtio-ports/vportNpM/name) and returns its device node.
func virtioPort(name string) (string, error) {
	entries, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
	for _, e := range entries {
		b, err := os.ReadFile(e)
		if err == nil && strings.TrimSpace(string(b)) == name {
			return "/dev/" + filepath.Base(filepath.Dir(e)), nil
		}
	}
	return "", qga.ErrNoPort
}

// guestInterfaces lists the network adapters as qemu-ga on Windows does:
// the Ethernet adapters by their friendly names ("Ethernet", "Ethernet 2",
// ...), then the loopback.
func guestInterfaces() ([]qga.Interface, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []qga.Interface
	n := 0
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagLoopback != 0 || len(ifc.HardwareAddr) == 0 {
			continue
		}
		n++
		name := "Ethernet"
		if n > 1 {
			name = fmt.Sprintf("Ethernet %d", n)
		}
		q := qga.Interface{Name: name, HardwareAddress: ifc.HardwareAddr.String(), Addresses: []qga.Address{}}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ones, _ := ipn.Mask.Size()
			t := "ipv6"
			if ipn.IP.To4() != nil {
				t = "ipv4"
			}
			q.Addresses = append(q.Addresses, qga.Address{Type: t, Address: ipn.IP.String(), Prefix: ones})
		}
		st := &qga.Stats{}
		for _, f := range []struct {
			file string
			v    *uint64
		}{{"rx_bytes", &st.RxBytes}, {"rx_packets", &st.RxPackets}, {"rx_errors", &st.RxErrs}, {"rx_dropped", &st.RxDropped},
			{"tx_bytes", &st.TxBytes}, {"tx_packets", &st.TxPackets}, {"tx_errors", &st.TxErrs}, {"tx_dropped", &st.TxDropped}} {
			b, _ := os.ReadFile(filepath.Join("/sys/class/net", ifc.Name, "statistics", f.file))
			*f.v, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		}
		q.Statistics = st
		out = append(out, q)
	}
	return append(out, qga.Loopback()), nil
}

// portReader reads a virtio-serial port, waiting while the host side is not
// connected (reads return end of file then) instead of ending.
type portReader struct{ f *os.File }

func (p portReader) Read(b []byte) (int, error) {
	for {
		n, err := p.f.Read(b)
		if n > 0 {
			return n, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (p portReader) Write(b []byte) (int, error) { return p.f.Write(b) }

// qemuGuestAgent starts the QEMU-GA service when it is installed, as
// Windows starts it at boot: qemu-ga opens the virtio-serial port
// org.qemu.guest_agent.0, which needs the VirtIO Serial driver (vioser).
func (w *installed) qemuGuestAgent() {
	if !w.st.QemuGuestAgent {
		return
	}
	g := w.g
	logf := func(format string, args ...any) { g.Log.Printf("qemu-ga", format, args...) }
	if !slices.Contains(w.st.Drivers, "vioser") {
		logf("service %s did not start: no driver for the virtio-serial controller (vioser is not in the driver store), so the port %s does not exist", qga.ServiceName, qga.Channel)
		return
	}
	g.Modprobe(DriverModules["vioser"])
	var dev string
	var err error
	for range 50 {
		if dev, err = virtioPort(qga.Channel); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		logf("service %s did not start: %v (the VM has no guest agent channel)", qga.ServiceName, err)
		return
	}
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		logf("service %s did not start: %v", qga.ServiceName, err)
		return
	}
	edition := strings.TrimSuffix(strings.TrimPrefix(w.st.Image.EditionID, "Server"), "Core")
	a := qga.New(qga.Options{
		Interfaces: guestInterfaces,
		HostName:   w.st.ComputerName,
		OS:         qga.WindowsOSInfo(edition),
		Unmodelled: func(format string, args ...any) { logf("not understood: "+format, args...) },
		Logf:       logf,
	})
	logf("service %s running on %s (%s)", qga.ServiceName, qga.Channel, dev)
	go func() {
		// Serve returns when the port has no host side (QEMU's chardev
		// is not connected yet, or was closed): wait for the next one, as
		// the real service does.
		for {
			if err := a.Serve(portReader{f}); !errors.Is(err, io.EOF) {
				logf("service %s: %v; serving again", qga.ServiceName, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}()
}
